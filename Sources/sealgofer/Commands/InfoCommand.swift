import ArgumentParser
import SealedStore
import Foundation

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show format, suite, epochs and file counts (no key needed).")

    @Option(help: "Store directory.") var store: String
    @Flag(help: "Machine-readable output.") var json = false

    func run() throws {
        do {
            let info = try StoreInfo.gather(path: store)
            // Epochs with the files sealed under each (Rotation/EpochUsage.swift; headers read without a key).
            let usage = try EpochUsage.scan(path: store)
            let epochs = info.keyring.epochs.map { e -> [String: Any] in
                let c = usage.byEpoch[e.id] ?? EpochUsage.Count()
                return ["id": Int(e.id), "state": e.isLive ? "live" : "retired", "created": Int(e.created),
                        "files": c.files, "bytes": c.bytes, "ciphertextBytes": c.ciphertextBytes]
            }
            if json {
                printJSON([
                    "formatVersion": info.config.formatVersion, "storeID": info.config.storeID.map { String(format: "%02x", $0) }.joined(),
                    "suite": info.config.suite.name, "chunkSize": info.config.chunkSize, "names": info.config.names,
                    "kdf": info.keyring.kdfName, "opsLimit": info.keyring.opsLimit, "memLimit": info.keyring.memLimit,
                    "epochs": epochs, "files": info.files, "directories": info.directories, "symlinks": info.symlinks,
                    "otherNodes": info.otherNodes, "ciphertextBytes": info.ciphertextBytes, "sidecars": info.sidecars,
                    "pendingJournals": info.pendingJournals,
                    "rotationInProgress": usage.rotationTarget.map { Int($0) as Any } ?? NSNull(), "filesWithUnknownEpoch": usage.unreadable
                        + usage.byEpoch.filter { id, _ in !info.keyring.epochs.contains { $0.id == id } }.values.reduce(0) { $0 + $1.files },
                ])
                return
            }
            print("format version  \(info.config.formatVersion)")
            print("store id        \(info.config.storeID.map { String(format: "%02x", $0) }.joined())")
            print("suite           \(info.config.suite.name)")
            print("chunk size      \(info.config.chunkSize)")
            print("names           \(info.config.names)")
            print("key             \(info.keyring.kdfName)" + (info.keyring.kdf == 2 ? " (argon2id ops \(info.keyring.opsLimit), mem \(info.keyring.memLimit))" : ""))
            for e in info.keyring.epochs {
                let c = usage.byEpoch[e.id] ?? EpochUsage.Count()
                print("epoch           \(e.id) \(e.isLive ? "live" : "retired"), created \(Date(timeIntervalSince1970: TimeInterval(e.created))), "
                      + "\(c.files) files (\(formatBytes(c.bytes)))" + (e.id == info.keyring.epochs.filter(\.isLive).map(\.id).max() ? ", encrypting" : ""))
            }
            if let t = usage.rotationTarget { print("rotation        unfinished, to epoch \(t): run `sealgofer rotate` to finish it") }
            print("files           \(info.files) (\(formatBytes(info.ciphertextBytes)) ciphertext), \(info.directories) directories, \(info.symlinks) symlinks")
            print("sidecars        \(info.sidecars)")
            print("pending commits \(info.pendingJournals)")
        } catch {
            throw ExitStatus.report(error)
        }
    }
}
