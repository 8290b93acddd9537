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

    @Option(name: .customLong("scratch"), help: "Directory for plaintext scratch files (default, and in place of one on a larger tmpfs: a private tmpfs of --scratch-limit + 1/8 + 4M when root; else a private directory under /dev/shm).")
    var scratchDirectory: String?

    @Option(name: .customLong("scratch-limit"), help: "Scratch bytes before unused scratches are evicted and opens use RPCs (e.g. 1G); also sizes the private scratch tmpfs, beyond which the sandbox's writes get ENOSPC.")
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

    @Flag(name: .customLong("no-landlock"),
          help: "Debugging only: do not confine the gofer's own filesystem view (Landlock) to the served tree, store and scratch.")
    var noLandlock = false

    /// Test hook: after lock-down, try to open this path and log the outcome.
    @Option(name: .customLong("debug-open-path"), help: .hidden)
    var debugOpenPath: String?

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
        AllocatorTuning.applyForServing()
        // While CAP_SYS_ADMIN is still held: the private scratch tmpfs.
        let scratch = privateScratch()
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
        if case .unavailable(let why) = scratch {
            logger.warning("no private scratch tmpfs (\(why)): writes through donated files are not capped by --scratch-limit; pass --scratch on a size-limited tmpfs for a cap")
        }
        if let passthroughDirectory {
            // The store path has its own handler (commit, then exit).
            if listenPath != nil { ListenSocket.exitOnTerminationSignals() }
            let provider = try HostProvider(rootPath: passthroughDirectory, logger: logger)
            try serve(provider: provider, confinement: ServeConfinement(readWrite: [.path(passthroughDirectory)]), logger: logger)
        } else if let storeDirectory {
            StoreServing.blockTerminationSignals()
            var options = SealedProvider.Options()
            options.readonly = readonly
            options.scratchDirectory = scratch.directoryPath ?? scratchDirectory
            if case .tmpfs = scratch, let scratchDirectory {
                logger.info("scratch on a private tmpfs capped near --scratch-limit instead of \(scratchDirectory)")
            }
            options.scratchLimit = ByteSize.parse(scratchLimit) ?? options.scratchLimit
            options.donateLimit = ByteSize.parse(donateLimit) ?? options.donateLimit
            options.donation = donation
            options.commitInterval = commitInterval
            // New files kept ready by a background thread (SealedProvider.Options.creationPool);
            // SEALGOFER_CREATION_POOL=0 turns that off (for comparisons), N sets the size (≤ 32).
            if let raw = getenv("SEALGOFER_CREATION_POOL"), let n = Int(String(cString: raw)), n >= 0 {
                options.creationPool = n
            }
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
            let confinement = ServeConfinement(readWrite: [.path(storeDirectory),
                                                           scratch.confinementTarget(operatorDirectory: scratchDirectory)])
            try serve(provider: provider, confinement: confinement, logger: logger)
        }
    }

    /// Runs the chosen mode with any provider.
    private func serve<P: Provider>(provider: P, confinement: ServeConfinement, logger: Logger) throws {
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
            try lockDown(confinement: confinement, logger: logger)
            logger.info("serving fd \(connectionFD)")
            server.serve(connectionFD: connectionFD)
        } else if let listenPath {
            let listener: UnixListener
            do {
                listener = try ListenSocket.listen(at: listenPath)
            } catch {
                logger.error("cannot listen on \(listenPath): \(error)")
                throw ExitCode(1)
            }
            try lockDown(confinement: confinement, logger: logger)
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

    /// The private scratch tmpfs for `--store`, made while CAP_SYS_ADMIN is
    /// still held: without `--scratch`, or in place of a `--scratch` that is
    /// on a larger tmpfs (`sealgofer run` passes one under /dev/shm).
    func privateScratch() -> PrivateScratch {
        guard storeDirectory != nil else { return .notWanted }
        let limit = ByteSize.parse(scratchLimit) ?? 1 << 30
        if let scratchDirectory, !ScratchTmpfs.shouldReplace(scratchDirectory, scratchLimit: limit) { return .notWanted }
        do {
            return .tmpfs(try ScratchTmpfs.makePrivateTmpfs(scratchLimit: limit))
        } catch let error as Errno where error == .EPERM {
            return .unavailable("no CAP_SYS_ADMIN")
        } catch {
            return .unavailable("\(error)")
        }
    }

    /// Everything is open: from here on the gofer sees only its own
    /// directories (Landlock) and runs only the allowlisted syscalls.
    private func lockDown(confinement: ServeConfinement, logger: Logger) throws {
        if noLandlock {
            logger.warning("Landlock disabled (--no-landlock): debugging only")
        } else {
            do {
                try confinement.apply(logger: logger)
            } catch {
                logger.critical("cannot confine the gofer with Landlock: \(error) (--no-landlock disables it, for debugging only)")
                throw ExitCode(1)
            }
        }
        defer { if let debugOpenPath { probeOpen(debugOpenPath, logger: logger) } }
        let mode = ServeHardening.SeccompMode.resolve(noSeccomp: noSeccomp, seccompLog: seccompLog)
        do {
            try ServeHardening.lockDown(mode: mode, forbiddenSyscallProbe: debugForbiddenSyscall, logger: logger)
        } catch {
            logger.critical("cannot install the seccomp filter: \(error) (--no-seccomp disables it, for debugging only)")
            throw ExitCode(1)
        }
    }
}

extension ServeCommand {
    /// Test hook: whether the locked-down gofer can still open `path`.
    private func probeOpen(_ path: String, logger: Logger) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            close(fd)
            logger.notice("debug: open \(path): ok")
        } else {
            logger.notice("debug: open \(path): errno \(errno)")
        }
    }
}

/// The scratch directory `serve --store` arranges for itself.
enum PrivateScratch {
    /// Not serving a store, or `--scratch` on a disk or a small enough tmpfs.
    case notWanted
    /// A private size-limited tmpfs (a directory descriptor, mounted nowhere).
    case tmpfs(Int32)
    /// Could not be made; scratch goes to `--scratch` or a private directory under /dev/shm.
    case unavailable(String)

    /// How ScratchSpace is told about it (`Options.scratchDirectory`).
    var directoryPath: String? {
        if case .tmpfs(let fd) = self { return "/proc/self/fd/\(fd)" }
        return nil
    }

    /// The scratch directory as Landlock sees it. The fallback private
    /// directory's name is random and made later, so all of /dev/shm.
    func confinementTarget(operatorDirectory: String?) -> ServeConfinement.Target {
        if case .tmpfs(let fd) = self { return .descriptor(fd) }
        return .path(operatorDirectory ?? "/dev/shm")
    }
}
