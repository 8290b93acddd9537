import ArgumentParser
import Glibc
import HostProvider
import Lisafs
import Logging

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

    // The encrypted provider plugs in here: `--store DIR` will build a
    // SealedProvider and hand it to `serve(provider:)` below.
    @Option(name: .customLong("store"), help: "Serve an encrypted store (not available yet).")
    var storeDirectory: String?

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
    }

    func run() throws {
        let logger = StderrLogging.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .warning)
        // A client vanishing mid-write must be an error return, not a fatal signal.
        signal(SIGPIPE, SIG_IGN)
        if let passthroughDirectory {
            let provider = try HostProvider(rootPath: passthroughDirectory, logger: logger)
            try serve(provider: provider, logger: logger)
        } else {
            logger.error("--store is not implemented yet")
            throw ExitCode(2)
        }
    }

    /// Runs the chosen mode with any provider.
    private func serve<P: Provider>(provider: P, logger: Logger) throws {
        let server = Server(provider: provider, options: .init(readonly: readonly), logger: logger)
        if let connectionFD {
            logger.info("serving fd \(connectionFD)")
            server.serve(connectionFD: connectionFD)
        } else if let listenPath {
            let listener = try UnixListener(path: listenPath)
            logger.info("listening on \(listenPath)")
            listener.run(serving: server)
        }
    }
}
