import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `sealgofer serve` hardens itself: seccomp allowlist in kill mode once
/// everything is open, capabilities dropped to the gofer's five, no_new_privs,
/// no core dumps. A forbidden syscall (the hidden `--debug-forbidden-syscall`
/// makes one, uname, right after the filter is installed) kills the process
/// with SIGSYS.
final class ServeHardeningTests: HostileTestCase {
    /// CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID.
    static let goferCapabilities: UInt64 = 0x1f

    // MARK: seccomp

    func testForbiddenSyscallKillsPassthroughServeWithSIGSYS() throws {
        try assertKilledBySIGSYS(try startGofer(extraArguments: ["--debug-forbidden-syscall"], ping: false))
    }

    func testForbiddenSyscallKillsStoreServeWithSIGSYS() throws {
        let store = try HostileStore()
        defer { store.remove() }
        try assertKilledBySIGSYS(try startGofer(extraArguments: ["--debug-forbidden-syscall"], ping: false,
                                                serving: store.serveArguments))
    }

    /// Controls for the two tests above: the same forbidden syscall is
    /// survived without the filter and in log mode, so SIGSYS above comes
    /// from the filter and not from the probe itself.
    func testForbiddenSyscallIsSurvivedWithNoSeccompAndInLogMode() throws {
        for mode in ["--no-seccomp", "--seccomp-log"] {
            try startGofer(extraArguments: ["--debug-forbidden-syscall", mode])
            assertStillServing(mode)
            let log = gofer?.logTail() ?? ""
            XCTAssertTrue(log.contains("survived the forbidden syscall"), "\(mode): \(log)")
            finishGofer(mode)
        }
    }

    /// SEALGOFER_SECCOMP=log (for suites that cannot pass flags) switches to
    /// log mode; it cannot switch the filter off.
    func testEnvironmentSelectsLogModeButCannotDisable() throws {
        setenv("SEALGOFER_SECCOMP", "log", 1)
        defer { unsetenv("SEALGOFER_SECCOMP") }
        try startGofer(extraArguments: ["--debug-forbidden-syscall"])
        assertStillServing("SEALGOFER_SECCOMP=log")
        finishGofer("SEALGOFER_SECCOMP=log")

        setenv("SEALGOFER_SECCOMP", "off", 1)
        truncate(sandbox.logPath, 0)
        try assertKilledBySIGSYS(try startGofer(extraArguments: ["--debug-forbidden-syscall"], ping: false))
    }

    // MARK: process state

    func testRunningPassthroughServeIsLockedDown() throws {
        try startGofer()
        try assertLockedDown(try XCTUnwrap(gofer), seccomp: true)
    }

    func testRunningStoreServeIsLockedDown() throws {
        let store = try HostileStore()
        defer { store.remove() }
        try startGofer(serving: store.serveArguments)
        _ = try mount()
        try assertLockedDown(try XCTUnwrap(gofer), seccomp: true)
    }

    func testNoSeccompLeavesOnlySeccompOff() throws {
        try startGofer(extraArguments: ["--no-seccomp"])
        try assertLockedDown(try XCTUnwrap(gofer), seccomp: false)
    }

    /// PR_SET_DUMPABLE 0 shows from outside as /proc/<pid>/status owned by root
    /// instead of the process's uid; that is only visible for a non-root
    /// process, so the store is served as nobody (setpriv). The control is a
    /// plain process under the same setpriv, whose /proc entry is nobody's.
    func testStoreServeAsNonRootIsNotDumpable() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to switch to nobody") }
        let setpriv = "/usr/bin/setpriv"
        guard access(setpriv, X_OK) == 0 else { throw XCTSkip("setpriv (util-linux) missing") }
        let store = try HostileStore()
        defer { store.remove() }
        let nobody: uid_t = 65534
        for path in try [store.root] + FileManager.default.subpathsOfDirectory(atPath: store.root).map({ store.root + "/" + $0 }) {
            XCTAssertEqual(lchown(path, nobody, gid_t(nobody)), 0, path)
        }
        let socketPath = store.root + "/gofer.sock"
        let asNobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

        let control = Process()
        control.executableURL = URL(fileURLWithPath: setpriv)
        control.arguments = Array(asNobody.dropFirst()) + ["/bin/sleep", "30"]
        try control.run()
        defer { control.terminate(); control.waitUntilExit() }

        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: setpriv)
        serve.arguments = Array(asNobody.dropFirst()) + [GoferProcess.binaryPath] + store.serveArguments
            + ["--listen", socketPath, "--log-level", "info"]
        FileManager.default.createFile(atPath: store.logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: store.logPath))
        serve.standardError = log
        serve.standardOutput = log
        try serve.run()
        defer { serve.terminate(); serve.waitUntilExit() }

        let deadline = Date().addingTimeInterval(20)
        while access(socketPath, F_OK) != 0 && serve.isRunning && Date() < deadline { usleep(20_000) }
        let logText = (try? String(contentsOfFile: store.logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(serve.isRunning, "serve as nobody ended: \(logText)")
        XCTAssertEqual(access(socketPath, F_OK), 0, "serve as nobody never listened: \(logText)")

        XCTAssertEqual(Self.statusField(control.processIdentifier, "Uid")?.first, "65534")
        XCTAssertEqual(Self.owner(ofProc: control.processIdentifier), nobody, "control: a dumpable process owns its /proc entry")
        XCTAssertEqual(Self.statusField(serve.processIdentifier, "Uid")?.first, "65534", "serve runs as nobody")
        XCTAssertEqual(Self.owner(ofProc: serve.processIdentifier), 0, "serve's /proc entry is root's: it is not dumpable")
        XCTAssertEqual(Self.statusField(serve.processIdentifier, "Seccomp")?.first, "2")
        XCTAssertEqual(Self.coreLimit(serve.processIdentifier), "0 0")
    }

    // MARK: Helpers

    private func assertKilledBySIGSYS(_ process: GoferProcess, file: StaticString = #filePath, line: UInt = #line) throws {
        let exit = process.waitForExit(timeout: 30)
        XCTAssertEqual(exit, .signaled(SIGSYS), "expected death by SIGSYS; log:\n\(process.logTail())", file: file, line: line)
        XCTAssertTrue(process.logTail().contains("seccomp filter installed"), process.logTail(), file: file, line: line)
        XCTAssertFalse(process.logTail().contains("survived the forbidden syscall"), file: file, line: line)
        gofer = nil // ended as it should; tearDown expects a clean exit otherwise
        client.close()
    }

    private func assertLockedDown(_ process: GoferProcess, seccomp: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let pid = process.pid
        XCTAssertEqual(Self.statusField(pid, "Seccomp")?.first, seccomp ? "2" : "0", "Seccomp", file: file, line: line)
        XCTAssertEqual(Self.statusField(pid, "NoNewPrivs")?.first, "1", "NoNewPrivs", file: file, line: line)
        XCTAssertEqual(Self.statusField(pid, "CapAmb").flatMap { UInt64($0[0], radix: 16) }, 0, file: file, line: line)
        XCTAssertEqual(Self.statusField(pid, "CapInh").flatMap { UInt64($0[0], radix: 16) }, 0, file: file, line: line)
        if getuid() == 0 {
            for field in ["CapEff", "CapPrm", "CapBnd"] {
                XCTAssertEqual(Self.statusField(pid, field).flatMap { UInt64($0[0], radix: 16) }, Self.goferCapabilities,
                               "\(field): only the gofer's capabilities", file: file, line: line)
            }
        }
        XCTAssertEqual(Self.coreLimit(pid), "0 0", "RLIMIT_CORE", file: file, line: line)
    }

    /// The words after "<name>:" in /proc/<pid>/status.
    static func statusField(_ pid: pid_t, _ name: String) -> [String]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        }
        return nil
    }

    /// "soft hard" of the "Max core file size" line of /proc/<pid>/limits.
    static func coreLimit(_ pid: pid_t) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Max core file size") {
            let words = line.dropFirst("Max core file size".count).split(separator: " ")
            return words.count >= 2 ? "\(words[0]) \(words[1])" : nil
        }
        return nil
    }

    /// Owner of /proc/<pid>/status: the process's euid while it is dumpable,
    /// root when it is not (the /proc/<pid> directory itself keeps the uid).
    static func owner(ofProc pid: pid_t) -> uid_t? {
        var st = stat()
        return stat("/proc/\(pid)/status", &st) == 0 ? st.st_uid : nil
    }
}
