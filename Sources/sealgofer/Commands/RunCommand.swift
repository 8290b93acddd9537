import ArgumentParser
import Foundation
import SealedProvider
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

/// `sealgofer run`: one command in a gVisor sandbox whose `--mount` is served by sealgofer.
/// Writes a temporary OCI bundle, runs it with the runsc launcher (Integrations/runsc),
/// streams the command's output, exits with its status and removes the sandbox, its gofer
/// and the bundle afterwards, also after Ctrl-C.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command in a gVisor sandbox with a sealed store mounted.",
        discussion: """
            The sandbox's root is the host's / (or --rootfs), read-only, with a private tmpfs at /tmp; \
            the store appears at --mount (default /data), which is also the working directory. \
            runsc gets --platform=ptrace --network=none unless --runsc-flag says otherwise \
            (e.g. --runsc-flag=--platform=systrap). Exit status: the command's; 128 when the sandbox \
            could not start (the server's log is shown then).
            """)

    @Option(help: "Sealed store directory to mount.") var store: String?
    @OptionGroup var key: KeyOptions
    @Option(help: "Serve this host directory unencrypted instead of a store (for comparison).")
    var passthrough: String?
    @Option(help: "Where the store appears inside the sandbox.") var mount = "/data"
    @Option(help: "Root filesystem directory of the sandbox (default: the host's /), mounted read-only.")
    var rootfs: String?
    @Flag(help: "Mount the store read-only.") var readonly = false
    @Option(name: .customLong("donate"),
            help: "Passed to serve: all (default) or read-only (an app's fsync commits durably; writes cost RPCs).")
    var donation: DonationPolicy?
    @Option(name: .customLong("scratch-limit"),
            help: "Passed to serve: plaintext scratch the sandbox may fill (default 1G; as root a capped tmpfs enforces it).")
    var scratchLimit: String?
    @Option(help: "Scratch directory on the host for the server (passed as --scratch).") var scratch: String?
    @Option(name: .customLong("runsc-flag"), parsing: .unconditionalSingleValue,
            help: "Extra global runsc flag, e.g. --runsc-flag=--debug (repeatable; later flags win).")
    var runscFlags: [String] = []
    @Option(name: .customLong("bind"), help: "HOSTDIR:DEST[:ro] — an extra plain bind mount served by the stock gofer (repeatable).")
    var binds: [String] = []
    @Option(name: [.customShort("e"), .customLong("env")], help: "KEY=VALUE for the command's environment (repeatable).")
    var environment: [String] = []
    @Option(help: "The launcher (default: next to sealgofer, Integrations/runsc/bin, /usr/local/bin, PATH).")
    var launcher: String?
    @Option(help: "Append the server's log here (default: a temporary file, shown when the sandbox fails).")
    var log: String?
    @Option(name: .customLong("log-level"), help: "Server log level (trace … critical).") var logLevel: String?
    @Flag(name: .customLong("keep-bundle"), help: "Keep the temporary bundle directory (debugging).")
    var keepBundle = false
    @Argument(parsing: .postTerminator, help: "-- CMD [ARGS…]") var command: [String] = []

    func validate() throws {
        guard (store == nil) != (passthrough == nil) else { throw ValidationError("give exactly one of --store or --passthrough") }
        if store != nil && key.keyFile == nil && key.passphraseFile == nil {
            throw ValidationError("--store needs --key-file or --passphrase-file")
        }
        if passthrough != nil && (key.keyFile != nil || key.passphraseFile != nil) {
            throw ValidationError("--key-file/--passphrase-file go with --store, not --passthrough")
        }
        guard mount.hasPrefix("/"), (mount as NSString).standardizingPath != "/" else {
            throw ValidationError("--mount must be an absolute path other than /")
        }
        guard !command.isEmpty else { throw ValidationError("no command: give it after --, e.g. -- sh -c 'ls /data'") }
        if let scratchLimit, ByteSize.parse(scratchLimit) == nil { throw ValidationError("bad --scratch-limit \(scratchLimit)") }
        for e in environment where !e.contains("=") { throw ValidationError("--env wants KEY=VALUE, got \(e)") }
        for b in binds {
            let parts = b.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 || (parts.count == 3 && parts[2] == "ro"), parts[1].hasPrefix("/") else {
                throw ValidationError("--bind wants HOSTDIR:DEST or HOSTDIR:DEST:ro, got \(b)")
            }
        }
    }

    func run() throws {
        guard geteuid() == 0 else { throw ExitStatus.report(CLIError.usage("run needs root (runsc does)")) }
        let executable = try LauncherLocator.ownExecutable()
        let backing = try resolveBacking()
        let launcherPath = try LauncherLocator.locate(explicit: launcher, executable: executable)

        // From here on Ctrl-C and friends stop the container in order (SignalRelay).
        try SignalRelay.install()
        signal(SIGPIPE, SIG_IGN)

        let bundle = try RunBundle.create()
        defer { if !keepBundle { bundle.remove() } else { fputs("sealgofer run: bundle kept in \(bundle.directory)\n", stderr) } }
        // The server's plaintext scratch files (unnamed, O_TMPFILE) go to a directory in RAM
        // that this run owns, so it is removed even when the server is killed.
        let privateScratch = store != nil && scratch == nil ? RunBundle.makeScratchDirectory() : nil
        defer { if let privateScratch { rmdir(privateScratch) } }
        let serverLog = log.map(absoluteNew) ?? bundle.defaultLog
        let mountPoint = (mount as NSString).standardizingPath
        let spec = RunSpec(
            command: command,
            environment: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                          "LANG=C.UTF-8"] + environment,
            rootfs: try rootfs.map(absolute) ?? "/",
            mountPoint: mountPoint,
            backing: backing,
            readonly: readonly,
            serverBinary: executable,
            serverLog: serverLog,
            serverLogLevel: logLevel,
            scratch: try scratch.map(absolute) ?? privateScratch,
            donation: donation?.rawValue,
            scratchLimit: scratchLimit,
            workingDirectory: mountPoint,
            binds: try binds.map { b -> RunSpec.Bind in
                let parts = b.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                return RunSpec.Bind(source: try absolute(parts[0]), destination: parts[1], readonly: parts.count == 3)
            })
        try spec.write(to: bundle)

        let containerID = "sealgofer-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let runsc = [launcherPath, "--root=" + bundle.stateRoot, "--platform=ptrace", "--network=none"] + runscFlags
        let status = try runSandbox(runsc: runsc, containerID: containerID, bundle: bundle)
        SandboxTeardown.run(runscCommand: runsc, containerID: containerID, stateRoot: bundle.stateRoot)
        if status == 128 && log == nil { showServerLog(bundle.defaultLog) }
        if status != 0 { throw ExitCode(status) }
    }

    /// Runs `runsc run` with the output pumped through pipes; returns its exit status.
    private func runSandbox(runsc: [String], containerID: String, bundle: RunBundle) throws -> Int32 {
        let stdoutPump = try OutputPump(to: 1)
        let stderrPump = try OutputPump(to: 2)
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(runsc + ["run", "--bundle", bundle.directory, containerID],
                                           stdout: stdoutPump.writeEnd, stderr: stderrPump.writeEnd,
                                           environment: ChildProcess.runscEnvironment)
        } catch {
            stdoutPump.closeWriteEnd(); stderrPump.closeWriteEnd()
            throw ExitStatus.report(error)
        }
        stdoutPump.closeWriteEnd(); stderrPump.closeWriteEnd()
        stdoutPump.start(); stderrPump.start()
        let relay = SignalRelay()
        relay.start(runscCommand: runsc, containerID: containerID, runsc: child.pid)
        let status = child.wait()
        relay.markFinished()
        // runsc has returned, but a sandbox process could still hold a pipe's write end
        // until teardown kills it: do not wait for EOF forever.
        stdoutPump.finish(within: 2)
        stderrPump.finish(within: 2)
        return status
    }

    /// Absolute paths for the annotations, and the key checked against the store here, so
    /// a wrong key is reported as such rather than as a failed mount inside the sandbox.
    private func resolveBacking() throws -> MountBacking {
        if let passthrough {
            let path = try absolute(passthrough)
            guard isDirectory(path) else { throw ExitStatus.report(CLIError.usage("--passthrough \(path) is not a directory")) }
            return .passthrough(path: path)
        }
        let storePath = try absolute(store!)
        do {
            let opened = try SealedStore.open(at: storePath, key: try key.load())
            opened.close()
        } catch {
            throw ExitStatus.report(error)
        }
        return .store(path: storePath, keyFile: try key.keyFile.map(absolute),
                      passphraseFile: try key.passphraseFile.map(absolute))
    }

    private func absolute(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else {
            throw ExitStatus.report(CLIError.usage("\(path): \(String(cString: strerror(errno)))"))
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// An absolute path for a file that need not exist yet (the log).
    private func absoluteNew(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    private func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    private func showServerLog(_ path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty else { return }
        fputs("sealgofer run: the sandbox did not run; the server's log:\n", stderr)
        for line in text.split(separator: "\n").suffix(20) { fputs("  \(line)\n", stderr) }
    }
}
