import ArgumentParser
import SealedStore

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new sealed store.",
        discussion: "--key-file creates the key file (mode 0600, 32 random bytes) if it does not exist. "
            + "Without a key option the passphrase is asked for twice on the terminal.")

    @Option(help: "Store directory (created; must be empty).") var store: String
    @OptionGroup var key: KeyOptions
    @Option(help: "Cipher suite of new files: aes256gcm or xchacha20poly1305 (default: aes256gcm where the CPU supports it).")
    var suite: String?
    @Option(name: .customLong("chunk-size"), help: "Plaintext chunk size in bytes (power of two, 4096…1048576).")
    var chunkSize: Int = StoreConfig.defaultChunkSize
    @Option(name: .customLong("kdf-cost"), help: "Argon2id cost for a passphrase: interactive, moderate, sensitive (minimal: tests only).")
    var kdfCost: String = PassphraseCost.moderate.rawValue

    func run() throws {
        do {
            var chosen: CipherSuite? = nil
            if let suite {
                guard let s = CipherSuite(name: suite) else { throw CLIError.usage("unknown suite \(suite)") }
                chosen = s
            }
            guard let cost = PassphraseCost(rawValue: kdfCost) else { throw CLIError.usage("unknown --kdf-cost \(kdfCost)") }
            let (material, created) = try key.loadOrCreate()
            try SealedStore.initialize(at: store, key: material, suite: chosen, chunkSize: chunkSize, cost: cost)
            let info = try StoreInfo.gather(path: store)
            print("initialised \(store): suite \(info.config.suite.name), chunk size \(info.config.chunkSize), "
                  + "key \(info.keyring.kdfName)\(created ? " (new key file \(key.keyFile!))" : "")")
        } catch {
            throw ExitStatus.report(error)
        }
    }
}
