import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a spawned gofer ended.
enum GoferExit: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let signal): return "killed by signal \(signal) (\(String(cString: strsignal(signal))))"
        }
    }
}

enum GoferSpawnError: Error, CustomStringConvertible {
    case binaryMissing(String)
    case system(String, Int32)

    var description: String {
        switch self {
        case .binaryMissing(let path):
            return "sealgofer binary not found at \(path): run `swift build` first"
        case .system(let call, let err):
            return "\(call) failed: \(String(cString: strerror(err)))"
        }
    }
}

/// A real `sealgofer` process started by a test. Only this object ever
/// signals or reaps the pid it started.
final class GoferProcess {
    let pid: pid_t
    let logPath: String
    private(set) var exit: GoferExit?

    private init(pid: pid_t, logPath: String) {
        self.pid = pid
        self.logPath = logPath
    }

    /// The package root, found from this file's location
    /// (Tests/HostileClientTests/Support/GoferProcess.swift).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    /// `<package>/.build/debug/sealgofer`; SEALGOFER_BINARY overrides it.
    static var binaryPath: String {
        if let override = ProcessInfo.processInfo.environment["SEALGOFER_BINARY"], !override.isEmpty {
            return override
        }
        return packageRoot.appendingPathComponent(".build/debug/sealgofer").path
    }

    /// Spawns `sealgofer <arguments>`. If `connectionFD` is given it becomes
    /// the child's fd 3; every other descriptor of ours above 2 is closed in
    /// the child. stdout and stderr go to `logPath`.
    static func spawn(arguments: [String], connectionFD: Int32?, logPath: String) throws -> GoferProcess {
        let binary = binaryPath
        guard access(binary, X_OK) == 0 else { throw GoferSpawnError.binaryMissing(binary) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        // Move our end to a high number first, so dup2 onto 3 always clears
        // FD_CLOEXEC (dup2(3, 3) would not).
        var highFD: Int32 = -1
        if let connectionFD {
            highFD = fcntl(connectionFD, F_DUPFD_CLOEXEC, 500)
            guard highFD >= 0 else { throw GoferSpawnError.system("fcntl(F_DUPFD_CLOEXEC)", errno) }
            posix_spawn_file_actions_adddup2(&actions, highFD, 3)
        }
        defer { if highFD >= 0 { _ = Glibc.close(highFD) } }
        if let closeFrom = LibcShims.addCloseFrom {
            _ = closeFrom(&actions, connectionFD == nil ? 3 : 4)
        }

        let argv = ([binary] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        var cArgv: [UnsafeMutablePointer<CChar>?] = argv
        cArgv.append(nil)
        var pid: pid_t = 0
        let rc = cArgv.withUnsafeMutableBufferPointer { buffer in
            posix_spawn(&pid, binary, &actions, nil, buffer.baseAddress!, environ)
        }
        guard rc == 0 else { throw GoferSpawnError.system("posix_spawn", rc) }
        return GoferProcess(pid: pid, logPath: logPath)
    }

    // MARK: Observing

    /// Reaps the child if it has ended; true while it runs.
    func isAlive() -> Bool {
        if exit != nil { return false }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid {
            exit = Self.decode(status)
            return false
        }
        return r == 0
    }

    /// Waits up to `timeout` seconds for the child to end; nil if it is still running.
    @discardableResult
    func waitForExit(timeout: TimeInterval) -> GoferExit? {
        let deadline = Date().addingTimeInterval(timeout)
        while isAlive() {
            if Date() > deadline { return nil }
            usleep(5_000)
        }
        return exit
    }

    /// SIGKILLs the child (ours) if it still runs, and reaps it.
    func killAndReap() {
        guard isAlive() else { return }
        Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        if waitpid(pid, &status, 0) == pid { exit = Self.decode(status) }
    }

    /// SIGTERMs the child (used for listen mode, which never exits by itself).
    func terminate(timeout: TimeInterval = 5) -> GoferExit? {
        guard isAlive() else { return exit }
        Glibc.kill(pid, SIGTERM)
        if let exit = waitForExit(timeout: timeout) { return exit }
        killAndReap()
        return exit
    }

    private static func decode(_ status: Int32) -> GoferExit {
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }

    /// Entries of /proc/<pid>/fd (nil once the process is gone).
    func openFDs() -> [String]? {
        try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
    }

    /// Number of host FDs the gofer holds right now.
    func fdCount() -> Int? { openFDs()?.count }

    /// What each open FD refers to (for failure messages).
    func fdTargets() -> [String] {
        (openFDs() ?? []).sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.map { name in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(name)")) ?? "?"
            return "\(name) -> \(target)"
        }
    }

    /// Polls until the FD count equals `expected` (or `timeout` passes);
    /// returns the last count seen. Donated FDs are closed right after a
    /// response is sent, so a count taken at once may be one request behind.
    func settledFDCount(expecting expected: Int, timeout: TimeInterval = 3) -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        var last = fdCount()
        while let count = last, count != expected, Date() < deadline {
            usleep(10_000)
            last = fdCount()
        }
        return last
    }

    /// Polls until three readings 20 ms apart agree.
    func steadyFDCount(timeout: TimeInterval = 3) -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        var readings: [Int] = []
        while Date() < deadline {
            guard let count = fdCount() else { return nil }
            readings.append(count)
            if readings.count >= 3 && Set(readings.suffix(3)).count == 1 { return count }
            usleep(20_000)
        }
        return readings.last
    }

    /// A field of /proc/<pid>/status in kB (VmHWM, VmRSS, Threads...).
    func statusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let digits = line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
                .split(separator: " ").first
            return digits.flatMap { Int($0) }
        }
        return nil
    }

    /// Lowers (or raises) the child's RLIMIT_NOFILE.
    func setFileLimit(_ limit: Int) throws {
        guard let prlimit = LibcShims.prlimit else { throw GoferSpawnError.system("dlsym(prlimit)", ENOSYS) }
        var value = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
        guard prlimit(pid, Int32(RLIMIT_NOFILE.rawValue), &value, nil) == 0 else {
            throw GoferSpawnError.system("prlimit", errno)
        }
    }

    /// The gofer's log for failure messages: its start (where a crash
    /// backtrace begins) and its end.
    func logTail(_ bytes: Int = 3000) -> String {
        guard let data = FileManager.default.contents(atPath: logPath) else { return "(no log)" }
        if data.count <= 2 * bytes { return String(decoding: data, as: UTF8.self) }
        return String(decoding: data.prefix(bytes), as: UTF8.self) + "\n[...]\n" + String(decoding: data.suffix(bytes), as: UTF8.self)
    }
}

/// glibc functions the Swift Glibc module does not export (_GNU_SOURCE ones,
/// sys/xattr.h), looked up at run time.
enum LibcShims {
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias PrLimit = @convention(c) (pid_t, Int32, UnsafePointer<rlimit>?, UnsafeMutablePointer<rlimit>?) -> Int32
    typealias SetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    typealias ListXattr = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<CChar>?, Int) -> Int
    typealias GetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int

    private static let handle = dlopen(nil, RTLD_NOW)

    static let addCloseFrom: AddCloseFrom? =
        dlsym(handle, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: AddCloseFrom.self) }
    static let prlimit: PrLimit? = dlsym(handle, "prlimit").map { unsafeBitCast($0, to: PrLimit.self) }
    static let setxattr = unsafeBitCast(dlsym(handle, "setxattr")!, to: SetXattr.self)
    static let llistxattr = unsafeBitCast(dlsym(handle, "llistxattr")!, to: ListXattr.self)
    static let lgetxattr = unsafeBitCast(dlsym(handle, "lgetxattr")!, to: GetXattr.self)
}
