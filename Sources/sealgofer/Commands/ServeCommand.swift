import ArgumentParser
import Glibc
import HostProvider
import Lisafs
import Logging
import SealedProvider
import SealedStore

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

    @Option(name: .customLong("donate"),
            help: "Which opens get the plaintext FD: all (fastest; an app's fsync is not a commit point) or read-only (writes as RPCs; fsync commits durably).")
    var donation: DonationPolicy = .all

    @Option(name: .customLong("commit-interval"), help: "Seconds between commits of open dirty files (0: only on Flush/FSync/Close).")
    var commitInterval: Double = 5

    @Flag(name: .customLong("readonly"), help: "Refuse every modification (EROFS).")
    var readonly = false

    @Option(name: .customLong("max-message-size"),
            help: "Largest lisafs message accepted or sent on any socket or channel (16K…16M; default 2M minus a page). Longer frames end the connection; PRead and Getdents64 answers are sized to fit.")
    var maxMessageSize: String?

    @Option(name: .customLong("max-channels"), help: "Channels per connection (1…64); further Channel RPCs get ENOMEM.")
    var maxChannels: Int = ServeLimits.defaultChannels

    @Option(name: .customLong("max-fds"), help: "FDIDs (control and open FDs) one connection may hold at once (16…1048576); more get EMFILE.")
    var maxFDs: Int = ServeLimits.defaultFDs

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "warning"

    @Flag(name: .customLong("no-seccomp"), help: "Debugging only: do not install the seccomp syscall allowlist.")
    var noSeccomp = false

    @Flag(name: .customLong("seccomp-log"),
          help: "Debugging only: syscalls outside the allowlist run and are logged by the kernel (dmesg: type=1326) instead of killing the gofer.")
    var seccompLog = false

    /// Test hook: after the allowlist is installed, make one forbidden syscall.
    @Flag(name: .customLong("debug-forbidden-syscall"), help: .hidden)
    var debugForbiddenSyscall = false

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
        let _: Server<HostProvider>.Options = try limits()
    }

    func run() throws {
        // Before any key is read and while single-threaded: no core dumps, no
        // capabilities beyond what serving needs.
        do {
            try ServeHardening.beforeStart()
        } catch {
            fputs("sealgofer: hardening failed: \(error)\n", stderr)
            throw ExitCode(1)
        }
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
            options.donation = donation
            options.commitInterval = commitInterval
            let provider: SealedProvider
            do {
                provider = try StoreServing.makeProvider(storePath: storeDirectory, key: try key.load(), options: options, logger: logger)
            } catch {
                throw ExitStatus.report(error)
            }
            StoreServing.commitOnSignals(provider, logger: logger)
            defer {
                provider.shutdown()
                // Everything is committed and nothing serves any more.
                SecretBytes.wipeAllForExit()
            }
            try serve(provider: provider, logger: logger)
        }
    }

    /// Runs the chosen mode with any provider.
    private func serve<P: Provider>(provider: P, logger: Logger) throws {
        var options: Server<P>.Options = try limits()
        if let capture = RequestCapture.fromEnvironment() {
            logger.warning("capturing every request (SEALGOFER_CAPTURE_DIR)")
            options.requestObserver = { capture.record(mid: $0, payload: $1) }
        }
        let server = Server(provider: provider, options: options, logger: logger)
        if let connectionFD {
            var info = stat()
            guard fstat(connectionFD, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else {
                logger.error("--fd \(connectionFD) is not an open socket")
                throw ExitCode(1)
            }
            try lockDown(logger: logger)
            logger.info("serving fd \(connectionFD)")
            server.serve(connectionFD: connectionFD)
        } else if let listenPath {
            let listener = try UnixListener(path: listenPath)
            try lockDown(logger: logger)
            logger.info("listening on \(listenPath)")
            listener.run(serving: server)
        }
    }
}

extension ServeCommand {
    /// The server's per-connection limits from the flags.
    func limits<P: Provider>() throws -> Server<P>.Options {
        try ServeLimits.options(readonly: readonly, maxMessageSize: maxMessageSize, maxChannels: maxChannels, maxFDs: maxFDs)
    }

    /// Everything is open: from here on only the allowlisted syscalls run.
    private func lockDown(logger: Logger) throws {
        let mode = ServeHardening.SeccompMode.resolve(noSeccomp: noSeccomp, seccompLog: seccompLog)
        do {
            try ServeHardening.lockDown(mode: mode, forbiddenSyscallProbe: debugForbiddenSyscall, logger: logger)
        } catch {
            logger.critical("cannot install the seccomp filter: \(error) (--no-seccomp disables it, for debugging only)")
            throw ExitCode(1)
        }
    }
}
