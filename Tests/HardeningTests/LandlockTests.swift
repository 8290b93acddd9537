import CLinux
import Foundation
import Hardening
import XCTest

/// Landlock confinement, applied in a child process (it cannot be undone).
final class LandlockTests: XCTestCase {
    func testConfinedProcessCannotOpenOutsideItsDirectory() throws {
        try XCTSkipUnless(Landlock.abi != nil, "the kernel has no Landlock")
        let root = try makeProbeTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = try Probe.run(["landlock", root + "/served", root + "/outside"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        XCTAssertEqual(result.lines.dropFirst(), [
            "inside ok",
            "outside errno \(EACCES)",
            "parent via held fd errno \(EACCES)",
            "thread outside errno \(EACCES)",
            "thread inside ok",
            "seccomp io ok",
        ], "\(result)")
        XCTAssertTrue(result.lines.first?.hasPrefix("confined abi ") ?? false, "\(result)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/served/made"))
    }

    /// Threads running before confinement are confined too (the gofer's
    /// signal waiter and committer); one that blocks every signal is counted
    /// and confines itself when it unblocks them.
    func testEveryThreadIsConfined() throws {
        try XCTSkipUnless(Landlock.abi != nil, "the kernel has no Landlock")
        let root = try makeProbeTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = try Probe.run(["landlock-threads", root + "/served", root + "/outside"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        XCTAssertEqual(result.lines, [
            "threads 3 unconfirmed 1",
            "main outside errno \(EACCES)",
            "early thread outside errno \(EACCES)",
            "early thread inside ok",
            "unblocked thread outside errno \(EACCES)",
        ], "\(result)")
    }

    /// libdispatch's pool monitor reads /proc/<tid>/stat of its workers while
    /// work is queued and crashes the process if it cannot: the gofer's
    /// read-only grant must cover it. The control, with only /proc/self,
    /// shows that the probe really makes the monitor look.
    func testDispatchPoolMonitorWorksWhenConfined() throws {
        try XCTSkipUnless(Landlock.abi != nil, "the kernel has no Landlock")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("landlock-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let confined = try Probe.run(["landlock-dispatch", root])
        XCTAssertEqual(confined.exitStatus, 0, "\(confined)")
        XCTAssertEqual(confined.lines, ["dispatch survived"])
        let control = try Probe.run(["landlock-dispatch", root, "/proc/self"])
        XCTAssertEqual(control.signal, SIGILL, "libdispatch's monitor should have crashed without /proc: \(control)")
    }

    func testReadWriteRightsLeaveOutExecutionAndDevices() {
        for abi in 1...7 {
            let rights = Landlock.Access.readWrite(abi: abi)
            XCTAssertTrue(rights.isSubset(of: .handled(abi: abi)))
            XCTAssertTrue(rights.isDisjoint(with: [.execute, .makeChar, .makeBlock, .ioctlDev]))
            XCTAssertTrue(rights.isSuperset(of: [.readFile, .writeFile, .readDir, .makeReg, .makeDir, .removeFile, .removeDir]))
        }
        XCTAssertFalse(Landlock.Access.handled(abi: 1).contains(.refer))
        XCTAssertTrue(Landlock.Access.readWrite(abi: 2).contains(.refer), "renames across directories of the store")
        XCTAssertTrue(Landlock.Access.readWrite(abi: 3).contains(.truncate))
    }

    /// A fresh directory with `served/` (the tree a probe confines itself to) and `outside`, a
    /// file readable by anyone, so that only Landlock can refuse it.
    private func makeProbeTree() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("landlock-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/served", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/outside", contents: Data("x".utf8),
                                                    attributes: [.posixPermissions: 0o644]))
        return root
    }
}
