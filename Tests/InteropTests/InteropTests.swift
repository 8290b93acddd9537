import Foundation
import XCTest

/// Runs Tests/Interop/run: gVisor's own lisafs client (Go, playing the sentry)
/// against all three servers: gVisor's fsgofer, `sealgofer serve --passthrough`
/// and `sealgofer serve --store` (sealed mode: every scenario on a fresh store,
/// then offline verify, export diff and plaintext scan).
/// The suite must build and run; missing Go or gVisor source is a failure,
/// never a skip.
final class InteropTests: XCTestCase {
    /// Tests/InteropTests/InteropTests.swift -> repository root.
    private var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The sealgofer binary `swift test` built into the same products directory
    /// as this test bundle. It is always passed to `run`: a nested `swift build`
    /// would block on the build lock SwiftPM holds while `swift test` runs.
    private var builtSealgofer: URL? {
        let bundle = Bundle(for: InteropTests.self).bundleURL
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            bundle.deletingLastPathComponent(),
            bundle,
        ]
        for dir in candidates {
            let bin = dir.appendingPathComponent("sealgofer")
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: bin.path, isDirectory: &isDir), !isDir.boolValue,
               FileManager.default.isExecutableFile(atPath: bin.path) {
                return bin
            }
        }
        return nil
    }

    func testGVisorClientAgainstAllServers() throws {
        let script = repoRoot.appendingPathComponent("Tests/Interop/run")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: script.path), "missing \(script.path)")

        // `all` = fsgofer, sealgofer passthrough and sealed store.
        let server = ProcessInfo.processInfo.environment["SEALGOFER_INTEROP_SERVER"] ?? "all"
        var arguments = ["--server", server]
        if server != "fsgofer" {
            guard let bin = builtSealgofer else {
                return XCTFail("no sealgofer executable next to the test bundle (\(CommandLine.arguments[0])); run `swift build` first")
            }
            arguments += ["--sealgofer", bin.path]
        }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("sealgofer-interop-\(getpid()).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let logHandle = try FileHandle(forWritingTo: log)

        let process = Process()
        process.executableURL = script
        process.arguments = arguments
        process.currentDirectoryURL = repoRoot
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()

        // The whole suite takes about a minute (three servers); a hang must not hold CI forever.
        let deadline = Date().addingTimeInterval(20 * 60)
        while process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
        }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
        }
        process.waitUntilExit()
        try logHandle.close()

        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        print(output)
        XCTAssertFalse(timedOut, "Tests/Interop/run did not finish within 20 minutes")
        XCTAssertEqual(process.terminationStatus, 0, "Tests/Interop/run exited with \(process.terminationStatus)")

        let summary = output.split(separator: "\n").last { $0.hasPrefix("interop: ") && $0.contains(" passed, ") }
        guard let summary else {
            return XCTFail("no `interop: N passed, M failed` line in the output")
        }
        let numbers = summary.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        XCTAssertEqual(numbers.count, 2, "unexpected summary line: \(summary)")
        if numbers.count == 2 {
            XCTAssertGreaterThan(numbers[0], 0, "no scenario passed: \(summary)")
            XCTAssertEqual(numbers[1], 0, "scenarios failed: \(summary)")
        }
        // The full set really ran against every server asked for: each scenario
        // line names each server's result.
        if server == "all" {
            let lines = output.split(separator: "\n").filter { $0.hasPrefix("ok ") || $0.hasPrefix("FAIL ") }
            XCTAssertGreaterThanOrEqual(lines.count, 30, "fewer scenario lines than expected")
            for line in lines {
                for kind in ["fsgofer=", "sealgofer=", "sealed="] where !line.contains(kind) {
                    XCTFail("scenario line without a \(kind) result: \(line)")
                }
            }
        }
    }
}
