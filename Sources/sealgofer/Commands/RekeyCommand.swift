import ArgumentParser
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

struct RekeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Rewrap every epoch's master key under a new key file or passphrase.",
        discussion: "Replaces the keyring atomically: afterwards only the new key opens the store; after a crash at "
            + "any instant exactly one of the two does. File data is not touched, so it takes the same time whatever "
            + "the store's size. A --new-key-file that does not exist is created (mode 0600, 32 random bytes). "
            + "Allowed while `serve --store` runs (the gofer keeps its keys; restart it with the new key). "
            + "Exit 0: done. 2: usage or wrong key. 3: another rekey or rotate holds the keyring lock.")

    @Option(help: "Store directory.") var store: String
    @OptionGroup var key: KeyOptions
    @Option(name: .customLong("new-key-file"), help: "New key file (created if absent).") var newKeyFile: String?
    @Option(name: .customLong("new-passphrase-file"), help: "File holding the new passphrase.") var newPassphraseFile: String?
    @Option(name: .customLong("kdf-cost"), help: "Argon2id cost for a new passphrase: interactive, moderate, sensitive (minimal: tests only).")
    var kdfCost: String = PassphraseCost.moderate.rawValue
    @Flag(help: "Machine-readable summary.") var json = false

    func validate() throws {
        guard (newKeyFile == nil) != (newPassphraseFile == nil) else {
            throw ValidationError("give exactly one of --new-key-file or --new-passphrase-file")
        }
    }

    func run() throws {
        do {
            guard let cost = PassphraseCost(rawValue: kdfCost) else { throw CLIError.usage("unknown --kdf-cost \(kdfCost)") }
            var created = false
            let report = try StoreRekey.run(path: store, current: try key.load(), new: {
                if let newKeyFile {
                    if access(newKeyFile, F_OK) != 0 { created = true; return try KeyMaterial.createKeyFileDurably(path: newKeyFile) }
                    return try KeyMaterial.readKeyFile(path: newKeyFile)
                }
                return try KeyMaterial.readPassphraseFile(path: newPassphraseFile!)
            }, cost: cost)
            if json {
                printJSON(["epochs": report.epochs, "oldKDF": report.oldKDF, "newKDF": report.newKDF,
                           "createdKeyFile": created, "seconds": report.seconds])
            } else {
                print("rekeyed \(store): \(report.epochs) epoch\(report.epochs == 1 ? "" : "s") rewrapped under "
                      + (newKeyFile.map { "key file \($0)" + (created ? " (new)" : "") } ?? "the new passphrase")
                      + String(format: " in %.0f ms; the old key no longer opens the store", report.seconds * 1000))
            }
        } catch let busy as KeyringLock.Busy {
            fputs("sealgofer: \(busy.description); try again when it has finished\n", stderr)
            throw ExitCode(RotationExitStatus.busy)
        } catch {
            throw ExitStatus.report(error)
        }
    }
}
