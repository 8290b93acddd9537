import ArgumentParser
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Decrypt one file to stdout or OUT; with -r, a subtree to directory OUT.")

    @Option(help: "Store directory.") var store: String
    @OptionGroup var key: KeyOptions
    @Flag(name: .short, help: "Export the subtree at PATH into directory OUT.") var recursive = false
    @Option(name: .short, help: "Output file (or directory with -r).") var output: String?
    @Argument(help: "Path inside the store.") var path: String

    func validate() throws {
        if recursive && output == nil { throw ValidationError("-r needs -o OUT (a directory)") }
    }

    func run() throws {
        do {
            let s = try SealedStore.open(at: store, key: try key.load())
            defer { s.close() }
            if recursive {
                let report = try TreeExporter.exportTree(store: s, path: path, to: output!)
                for skipped in report.skipped { fputs("sealgofer: skipped \(skipped)\n", stderr) }
                fputs("exported \(report.files) files (\(report.bytes) bytes), \(report.directories) directories, "
                      + "\(report.symlinks) symlinks, \(report.hardLinks) hard links\n", stderr)
                return
            }
            guard let output else {
                try TreeExporter.exportFile(store: s, path: path, to: 1)
                return
            }
            let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw CLIError.usage("cannot create \(output): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            do { try TreeExporter.exportFile(store: s, path: path, to: fd) } catch {
                ftruncate(fd, 0)   // never leave a partial plaintext behind on damage
                throw error
            }
        } catch {
            throw ExitStatus.report(error)
        }
    }
}
