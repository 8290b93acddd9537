import Foundation
import XCTest

/// Runs Sources/hardening-probe (built next to the test bundle) and reports
/// how it ended.
struct ProbeResult {
    var stdout: String
    var stderr: String
    /// Exit status, or nil if a signal ended it.
    var exitStatus: Int32?
    /// The terminating signal, if any.
    var signal: Int32?

    var lines: [String] { stdout.split(separator: "\n").map(String.init) }
}

enum Probe {
    static var executable: URL {
        // The test bundle is an executable in .build/<config>/; so is the probe.
        let bundle = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0])
        return bundle.deletingLastPathComponent().appendingPathComponent("hardening-probe")
    }

    static func run(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> ProbeResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let signalled = process.terminationReason == .uncaughtSignal
        return ProbeResult(stdout: String(decoding: stdout, as: UTF8.self),
                           stderr: String(decoding: stderr, as: UTF8.self),
                           exitStatus: signalled ? nil : process.terminationStatus,
                           signal: signalled ? process.terminationStatus : nil)
    }
}
