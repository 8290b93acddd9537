import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A sealed store made with the real binary (`sealgofer init`), for tests
/// that serve `--store` (this target links no store code).
final class HostileStore {
    let root: String
    var storePath: String { root + "/store" }
    var keyPath: String { root + "/key" }
    var scratchPath: String { root + "/scratch" }
    var logPath: String { root + "/serve.log" }

    init() throws {
        var template = Array("/tmp/sealgofer-hstore-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw GoferSpawnError.system("mkdtemp", errno)
        }
        root = String(cString: made)
        mkdir(scratchPath, 0o700)
        let result = try Self.runBinary(["init", "--store", storePath, "--key-file", keyPath])
        guard result.status == 0 else {
            throw GoferSpawnError.system("sealgofer init: \(result.output)", EINVAL)
        }
    }

    /// `serve --store` arguments for this store (before the connection option).
    var serveArguments: [String] {
        ["serve", "--store", storePath, "--key-file", keyPath, "--scratch", scratchPath]
    }

    /// The key file's 32 bytes.
    var keyBytes: [UInt8] { Array(FileManager.default.contents(atPath: keyPath) ?? Data()) }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    /// Runs the sealgofer binary to completion; output is stdout and stderr together.
    static func runBinary(_ arguments: [String], executable: String = GoferProcess.binaryPath) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
