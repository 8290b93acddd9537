import ArgumentParser
import Glibc
import HostProvider
import Lisafs
import Logging
import SealedProvider

/// `sealgofer serve`: serve a tree over lisafs, either on one inherited
/// connected socket (`--fd N`, exits when the client goes away) or on a
/// listening socket (`--listen PATH`, each accepted connection is a mount).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a directory tree to a gVisor sandbox over lisafs.")

    @Option(name: .customLong("fd"), help: "Inherited connected AF_UNIX stream socket to serve (one connection).")
    var connectionFD: Int32?

    @Option(name: .customLong("listen"), help: "Path of an AF_UNIX socket to listen on (one mount per connection).")
    var listenPath: String?

    @Option(name: .customLong("passthrough"), help: "Serve this host directory as is (plaintext).")
    var passthroughDirectory: String?

    @Option(name: .customLong("store"), help: "Serve data/ of a sealed store (needs --key-file or --passphrase-file).")
    var storeDirectory: String?

    @OptionGroup var key: KeyOptions

    @Option(name: .customLong("scratch"), help: "Directory for plaintext scratch files (default: private, under /dev/shm).")
    var scratchDirectory: String?

    @Option(name: .customLong("scratch-limit"), help: "Scratch bytes before unused scratches are evicted and opens use RPCs (e.g. 1G).")
    var scratchLimit: String = "1G"

    @Option(name: .customLong("donate-limit"), help: "Files above this size are served through RPCs, without a scratch (e.g. 64M).")
    var donateLimit: String = "64M"

    @Option(name: .customLong("commit-interval"), help: "Seconds between commits of open dirty files (0: only on Flush/FSync/Close).")
    var commitInterval: Double = 5

    @Flag(name: .customLong("readonly"), help: "Refuse every modification (EROFS).")
    var readonly = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "warning"

    func validate() throws {
        guard (connectionFD == nil) != (listenPath == nil) else {
            throw ValidationError("give exactly one of --fd or --listen")
        }
        guard (passthroughDirectory == nil) != (storeDirectory == nil) else {
            throw ValidationError("give exactly one of --passthrough or --store")
        }
        if let connectionFD, connectionFD < 0 { throw ValidationError("--fd must be a file descriptor number") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if storeDirectory == nil && (key.keyFile != nil || key.passphraseFile != nil || scratchDirectory != nil) {
            throw ValidationError("--key-file, --passphrase-file and --scratch need --store")
        }
        if ByteSize.parse(scratchLimit) == nil { throw ValidationError("bad --scratch-limit \(scratchLimit)") }
        if ByteSize.parse(donateLimit) == nil { throw ValidationError("bad --donate-limit \(donateLimit)") }
        guard commitInterval >= 0, commitInterval.isFinite else { throw ValidationError("bad --commit-interval") }
    }

    func run() throws {
        let logger = StderrLogging.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .warning)
        // A client vanishing mid-write must be an error return, not a fatal signal.
        signal(SIGPIPE, SIG_IGN)
        if let passthroughDirectory {
            let provider = try HostProvider(rootPath: passthroughDirectory, logger: logger)
            try serve(provider: provider, logger: logger)
        } else if let storeDirectory {
            StoreServing.blockTerminationSignals()
            var options = SealedProvider.Options()
            options.readonly = readonly
            options.scratchDirectory = scratchDirectory
            options.scratchLimit = ByteSize.parse(scratchLimit) ?? options.scratchLimit
            options.donateLimit = ByteSize.parse(donateLimit) ?? options.donateLimit
            options.commitInterval = commitInterval
            let provider: SealedProvider
            do {
                provider = try StoreServing.makeProvider(storePath: storeDirectory, key: try key.load(), options: options, logger: logger)
            } catch {
                throw ExitStatus.report(error)
            }
            StoreServing.commitOnSignals(provider, logger: logger)
            defer { provider.shutdown() }
            try serve(provider: provider, logger: logger)
        }
    }

    /// Runs the chosen mode with any provider.
    private func serve<P: Provider>(provider: P, logger: Logger) throws {
        let server = Server(provider: provider, options: .init(readonly: readonly), logger: logger)
        if let connectionFD {
            var info = stat()
            guard fstat(connectionFD, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else {
                logger.error("--fd \(connectionFD) is not an open socket")
                throw ExitCode(1)
            }
            logger.info("serving fd \(connectionFD)")
            server.serve(connectionFD: connectionFD)
        } else if let listenPath {
            let listener = try UnixListener(path: listenPath)
            logger.info("listening on \(listenPath)")
            listener.run(serving: server)
        }
    }
}
