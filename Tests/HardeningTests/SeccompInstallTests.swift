import Foundation
import XCTest

/// Installs real filters in a child process (hardening-probe) and checks what
/// the kernel does: the filter is irreversible, so never in the test process.
final class SeccompInstallTests: XCTestCase {
    func testForbiddenSyscallKillsTheProcessWithSIGSYS() throws {
        let result = try Probe.run(["seccomp-denied"])
        XCTAssertEqual(result.lines, ["installed"])
        XCTAssertEqual(result.signal, SIGSYS, "\(result)")
    }

    func testAllowedSyscallsStillWorkOnThisAndNewThreads() throws {
        let result = try Probe.run(["seccomp-allowed"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        XCTAssertEqual(result.lines, ["ok"])
    }

    func testThreadThatExistedBeforeInstallIsFilteredToo() throws {
        let result = try Probe.run(["seccomp-tsync"])
        XCTAssertEqual(result.lines, ["thread filtered true", "thread io ok"])
        XCTAssertEqual(result.signal, SIGSYS, "\(result)")
    }

    func testWithoutTSYNCTheOlderThreadStaysUnfiltered() throws {
        // Control for the test above: shows that TSYNC is what filters the old thread.
        let result = try Probe.run(["seccomp-no-tsync"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        XCTAssertEqual(result.lines, ["thread filtered false", "main filtered true"])
    }

    func testArgumentRuleKillsOnAForbiddenFcntlCommand() throws {
        let result = try Probe.run(["seccomp-fcntl"])
        XCTAssertEqual(result.lines, ["getfd true"])
        XCTAssertEqual(result.signal, SIGSYS, "\(result)")
    }

    func testErrnoActionFailsTheCallWithoutKilling() throws {
        let result = try Probe.run(["seccomp-errno"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        XCTAssertEqual(result.lines, ["uname -1 errno \(EACCES)"])
    }

    func testTrapReporterNamesTheBlockedSyscall() throws {
        let result = try Probe.run(["seccomp-report"])
        XCTAssertEqual(result.lines, ["installed"])
        XCTAssertEqual(result.exitStatus, 128 + SIGSYS, "\(result)")
        #if arch(x86_64)
        XCTAssertEqual(result.stderr, "seccomp: blocked syscall uname (63)\n")
        #else
        XCTAssertTrue(result.stderr.hasPrefix("seccomp: blocked syscall uname ("), result.stderr)
        #endif
    }
}
