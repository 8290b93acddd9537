import Foundation
import XCTest

/// `serve --listen PATH`: the socket file goes away when the gofer is told to
/// stop, and PATH may be longer than sockaddr_un's 108 bytes (it is bound
/// relative to its directory).
final class ListenSocketTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("listen-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root + "/served", withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    static var sealgofer: String { Probe.executable.deletingLastPathComponent().appendingPathComponent("sealgofer").path }

    /// Starts `sealgofer serve --listen path …` and waits for the socket file.
    func startServing(_ path: String, _ serving: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.sealgofer)
        process.arguments = ["serve", "--listen", path] + serving
        process.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: root + "/serve.log", contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/serve.log"))
        try process.run()
        for _ in 0..<200 where !isSocket(path) && process.isRunning { usleep(50_000) }
        XCTAssertTrue(isSocket(path), "no socket at \(path): \(log)")
        return process
    }

    var log: String { (try? String(contentsOfFile: root + "/serve.log", encoding: .utf8)) ?? "" }

    /// lstat through the directory, so long paths work here too.
    func isSocket(_ path: String) -> Bool {
        withDirectory(of: path) { dir, name in
            var info = stat()
            return fstatat(dir, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
        }
    }

    func withDirectory<T>(of path: String, _ body: (Int32, String) -> T) -> T {
        let slash = path.lastIndex(of: "/")!
        let dir = open(String(path[..<slash]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(dir) }
        return body(dir, String(path[path.index(after: slash)...]))
    }

    /// SIGTERM (or `signal`): exit status 0 (for SIGTERM) and, shortly after
    /// (the gofer's helper removes it once the gofer is gone), no socket file.
    func stopAndCheckRemoved(_ process: Process, _ path: String, signal: Int32 = SIGTERM) {
        XCTAssertEqual(kill(process.processIdentifier, signal), 0)
        process.waitUntilExit()
        if signal == SIGTERM {
            XCTAssertEqual(process.terminationReason, .exit, log)
            XCTAssertEqual(process.terminationStatus, 0, log)
        }
        func exists() -> Bool { withDirectory(of: path) { dir, name in faccessat(dir, name, F_OK, AT_SYMLINK_NOFOLLOW) } == 0 }
        for _ in 0..<100 where exists() { usleep(20_000) }
        XCTAssertFalse(exists(), "the socket file must be removed after signal \(signal)")
    }

    func testSocketIsRemovedEvenAfterSIGKILL() throws {
        let path = root + "/killed.sock"
        let process = try startServing(path, ["--passthrough", root + "/served"])
        stopAndCheckRemoved(process, path, signal: SIGKILL)
    }

    /// The helper removes only the socket it bound: a socket that replaced it stays.
    func testAReplacedSocketIsLeftAlone() throws {
        let path = root + "/replaced.sock"
        let first = try startServing(path, ["--passthrough", root + "/served"])
        let second = try startServing(path, ["--passthrough", root + "/served"])  // replaces the stale-looking file
        defer { if second.isRunning { kill(second.processIdentifier, SIGKILL) } }
        kill(first.processIdentifier, SIGTERM)
        first.waitUntilExit()
        usleep(300_000)
        XCTAssertTrue(isSocket(path), "the second gofer's socket must survive the first one's exit")
        stopAndCheckRemoved(second, path)
    }

    func testPassthroughRemovesItsSocketOnSIGTERM() throws {
        let path = root + "/gofer.sock"
        let process = try startServing(path, ["--passthrough", root + "/served"])
        stopAndCheckRemoved(process, path)
    }

    func testStoreServerRemovesItsSocketOnSIGTERM() throws {
        let initialise = Process()
        initialise.executableURL = URL(fileURLWithPath: Self.sealgofer)
        initialise.arguments = ["init", "--store", root + "/store", "--key-file", root + "/key"]
        initialise.standardOutput = FileHandle.nullDevice
        try initialise.run()
        initialise.waitUntilExit()
        XCTAssertEqual(initialise.terminationStatus, 0)
        let path = root + "/store.sock"
        let process = try startServing(path, ["--store", root + "/store", "--key-file", root + "/key"])
        stopAndCheckRemoved(process, path)
    }

    /// A socket path of ~200 bytes: bound, accepts a connection made through
    /// its directory, removed at exit. (Before: bind failed with ENAMETOOLONG.)
    func testSocketPathLongerThanSunPath() throws {
        var directory = root
        for i in 0..<4 { directory += "/a-rather-long-directory-name-number-\(i)" }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/gofer.sock"
        XCTAssertGreaterThan(path.utf8.count, 108)
        let process = try startServing(path, ["--passthrough", root + "/served"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        // connect(2) through /proc/self/fd/N/name: the same trick, client side.
        let connected: Int32 = withDirectory(of: path) { dir, name in
            let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let short = "/proc/self/fd/\(dir)/\(name)"
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: Array(short.utf8) + [0])
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            let result = rc == 0 ? 0 : errno
            close(client)
            return result
        }
        XCTAssertEqual(connected, 0, "connect to the long path: errno \(connected); \(log)")
        stopAndCheckRemoved(process, path)
    }
}
