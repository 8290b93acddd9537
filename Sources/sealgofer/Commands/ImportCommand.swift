import ArgumentParser
import SealedStore

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Encrypt the contents of directory SRC into the store at DEST (default: the root).")

    @Option(help: "Store directory.") var store: String
    @OptionGroup var key: KeyOptions
    @Argument(help: "Plaintext source directory.") var source: String
    @Argument(help: "Destination directory inside the store.") var destination: String = "/"

    func run() throws {
        do {
            var options = SealedStore.Options()
            options.orderingSyncs = false   // one syncfs at the end instead of per-commit syncs
            let s = try SealedStore.open(at: store, key: try key.load(), options: options)
            defer { s.close() }
            let bar = ProgressBar("import")
            let report = try TreeImporter.run(store: s, source: source, destination: destination) { bar.update(done: $0, total: nil) }
            bar.finish()
            for skipped in report.skipped { fputs("sealgofer: skipped \(skipped)\n", stderr) }
            print("imported \(report.files) files (\(report.bytes) bytes), \(report.directories) directories, "
                  + "\(report.symlinks) symlinks, \(report.hardLinks) hard links")
        } catch {
            throw ExitStatus.report(error)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
