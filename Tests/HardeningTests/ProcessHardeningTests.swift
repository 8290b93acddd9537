import Foundation
import Hardening
import XCTest

/// Core dumps and capabilities, applied in a child process (they cannot be undone).
final class ProcessHardeningTests: XCTestCase {
    func testDisableCoreDumps() throws {
        let result = try Probe.run(["core"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        XCTAssertEqual(result.lines, ["dumpable false core 0 0"])
    }

    /// The test process's own capabilities decide what can be checked.
    func requireCapSetpcap() throws {
        let state = try Hardening.currentCapabilities()
        try XCTSkipUnless(state.effective & Capability.setpcap.bit != 0 && state.permitted & Capability.chown.bit != 0,
                          "needs root with CAP_SETPCAP and CAP_CHOWN (have \(state))")
    }

    func statusField(_ name: String, in result: ProbeResult) -> UInt64? {
        guard let line = result.lines.first(where: { $0.hasPrefix(name + ":") }) else { return nil }
        return UInt64(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16)
    }

    func testDropCapabilitiesKeepsOnlyTheGivenOnesInEveryKernelSet() throws {
        try requireCapSetpcap()
        let result = try Probe.run(["caps", "chown", "fowner"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        let expected = Capability.chown.bit | Capability.fowner.bit
        XCTAssertEqual(statusField("CapEff", in: result), expected, "\(result)")
        XCTAssertEqual(statusField("CapPrm", in: result), expected)
        XCTAssertEqual(statusField("CapBnd", in: result), expected)
        XCTAssertEqual(statusField("CapInh", in: result), 0)
        XCTAssertEqual(statusField("CapAmb", in: result), 0)
        XCTAssertTrue(result.lines.contains("NoNewPrivs:\t1"), "\(result)")
        XCTAssertTrue(result.lines.contains("chown ok"), "kept CAP_CHOWN must still work: \(result)")
    }

    func testDroppedCapabilityIsReallyGone() throws {
        try requireCapSetpcap()
        let result = try Probe.run(["caps", "fowner"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        XCTAssertEqual(statusField("CapEff", in: result), Capability.fowner.bit)
        XCTAssertEqual(statusField("CapBnd", in: result), Capability.fowner.bit)
        XCTAssertTrue(result.lines.contains("chown errno \(EPERM)"), "chown without CAP_CHOWN: \(result)")
    }

    func testDropCapabilitiesRefusesWhileOtherThreadsRun() throws {
        let result = try Probe.run(["caps-threaded"])
        XCTAssertEqual(result.exitStatus, 0, "\(result)")
        XCTAssertEqual(result.lines.count, 1)
        XCTAssertTrue(result.lines.first?.hasPrefix("refused 2 threads running") ?? false, "\(result)")
    }

    func testCapabilityNumbersMatchTheKernel() {
        XCTAssertEqual(Capability.setpcap.rawValue, 8)
        XCTAssertEqual(Capability.sysAdmin.rawValue, 21)
        XCTAssertEqual(Capability.checkpointRestore.rawValue, 40)
        XCTAssertEqual(CapabilityState.mask(Capability.goferDefaults), 0x1f)
    }
}
