import Foundation
import XCTest

/// Runs the shell sandbox suite (Tests/Sandbox/run: real gVisor sandboxes started with
/// `sealgofer run`, on an encrypted store and on passthrough) and checks its summary line.
/// Needs root, runsc, golang-go, golang-gvisor-gvisor-dev, sqlite3 and python3; a missing one
/// fails the suite (it does not skip).
final class SandboxSuiteTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The sealgofer executable that `swift test` built (this target depends on it).
    private static var sealgofer: String {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("sealgofer").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return repository.appendingPathComponent(".build/debug/sealgofer").path
    }

    func testSandboxSuite() throws {
        let script = Self.repository.appendingPathComponent("Tests/Sandbox/run")
        let process = Process()
        process.executableURL = script
        var environment = ProcessInfo.processInfo.environment
        environment["SEALGOFER"] = Self.sealgofer
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()

        // Echo the suite's output as it comes (it takes minutes) and keep it for the summary.
        var output = Data()
        let reader = pipe.fileHandleForReading
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            output.append(chunk)
            FileHandle.standardOutput.write(chunk)
        }
        process.waitUntilExit()

        let text = String(decoding: output, as: UTF8.self)
        let summary = text.split(separator: "\n").last.map(String.init) ?? ""
        let pattern = try NSRegularExpression(pattern: #"^sandbox: (\d+) passed, (\d+) failed$"#)
        let match = pattern.firstMatch(in: summary, range: NSRange(summary.startIndex..., in: summary))
        XCTAssertNotNil(match, "no summary line; last line: \(summary)")
        if let match, let passed = Int((summary as NSString).substring(with: match.range(at: 1))),
           let failed = Int((summary as NSString).substring(with: match.range(at: 2))) {
            XCTAssertGreaterThan(passed, 100, "too few checks ran: \(summary)")
            XCTAssertEqual(failed, 0, summary + "\n" + text.split(separator: "\n").filter { $0.contains("FAILED") }.joined(separator: "\n"))
        }
        XCTAssertEqual(process.terminationStatus, 0, "Tests/Sandbox/run exited \(process.terminationStatus)")
    }
}
