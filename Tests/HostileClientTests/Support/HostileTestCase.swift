import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Base class: a fresh sandbox and a real `sealgofer serve --fd 3
/// --passthrough <served>` per test, spoken to in raw lisafs bytes.
///
/// tearDown hangs up and checks the invariants every case shares: the
/// gofer exits with status 0 (no signal, no hang), nothing outside the
/// served directory changed, and no escape file appeared anywhere.
class HostileTestCase: XCTestCase {
    var sandbox: Sandbox!
    var gofer: GoferProcess?
    var client: RawClient!
    private var sentinelBefore: [String: String] = [:]
    /// Set by tests that end the connection themselves and expect the
    /// gofer to have exited already.
    /// How long tearDown waits for the gofer to exit after the hang-up.
    var exitTimeout: TimeInterval = 10

    /// Where the sandbox lives; override for tmpfs.
    var sandboxParent: String { "/tmp" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        signal(SIGPIPE, SIG_IGN)
        sandbox = try Sandbox(parent: sandboxParent)
        sentinelBefore = sandbox.snapshot()
    }

    override func tearDown() {
        defer {
            gofer?.killAndReap()
            sandbox?.remove()
            super.tearDown()
        }
        if let gofer {
            client?.close()
            if let exit = gofer.waitForExit(timeout: exitTimeout) {
                XCTAssertEqual(exit, .exited(0), "gofer \(exit) after the client hung up; log:\n\(gofer.logTail())")
            } else {
                XCTFail("gofer still running \(exitTimeout) s after the client hung up (hang); log:\n\(gofer.logTail())")
            }
        }
        guard let sandbox else { return }
        let after = sandbox.snapshot()
        if after != sentinelBefore {
            let keys = Set(after.keys).union(sentinelBefore.keys).sorted()
            let changes = keys.filter { after[$0] != sentinelBefore[$0] }.map {
                "\($0): \(sentinelBefore[$0] ?? "(absent)") => \(after[$0] ?? "(absent)")"
            }
            XCTFail("outside of the served directory changed:\n" + changes.joined(separator: "\n"))
        }
        let escapes = sandbox.existingEscapes()
        XCTAssertEqual(escapes, [], "files created outside the served directory")
        for path in escapes { unlink(path); rmdir(path) }
    }

    // MARK: Starting

    /// Spawns the gofer on a fresh socketpair. Fails the test (not skips) if
    /// the binary is missing. `serving` replaces `serve --passthrough <served>`
    /// (e.g. with a store's `serve --store ...`).
    @discardableResult
    func startGofer(extraArguments: [String] = [], ping: Bool = true, serving: [String]? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> GoferProcess {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw GoferSpawnError.system("socketpair", errno)
        }
        defer { _ = Glibc.close(pair[1]) }
        let process: GoferProcess
        do {
            process = try GoferProcess.spawn(
                arguments: (serving ?? ["serve", "--passthrough", sandbox.served]) + ["--fd", "3", "--log-level", "info"] + extraArguments,
                connectionFD: pair[1], logPath: sandbox.logPath)
        } catch {
            _ = Glibc.close(pair[0])
            XCTFail("cannot start the gofer: \(error)", file: file, line: line)
            throw error
        }
        gofer = process
        client = RawClient(fd: pair[0])
        if ping {
            // An empty Close: proves the gofer is up (so FD counts taken now are
            // its steady state) without creating anything.
            let reply = client.call(.close, CloseReq(fds: []))
            if reply.mid != MID.close.rawValue {
                XCTFail("gofer does not answer an empty Close: \(reply); log:\n\(process.logTail())", file: file, line: line)
                throw TestAbort(reason: "gofer not serving")
            }
        }
        return process
    }

    /// Hangs up and asserts the gofer exits with status 0 (used by tests that
    /// run several gofers one after another; tearDown does it for the last).
    func finishGofer(_ context: String = "", file: StaticString = #filePath, line: UInt = #line) {
        guard let process = gofer else { return }
        client?.close()
        if let exit = process.waitForExit(timeout: exitTimeout) {
            XCTAssertEqual(exit, .exited(0), "\(context): gofer \(exit); log:\n\(process.logTail())", file: file, line: line)
        } else {
            XCTFail("\(context): gofer still running \(exitTimeout) s after hang-up; log:\n\(process.logTail())", file: file, line: line)
            process.killAndReap()
        }
        gofer = nil
    }

    /// Asserts the server hangs up on us (EOF) within `timeout`.
    func assertHangsUp(_ context: String, timeout: TimeInterval = 5, file: StaticString = #filePath, line: UInt = #line) {
        let reply = client.receive(timeout: timeout)
        XCTAssertTrue(reply.isClosed, "\(context): expected the gofer to close the connection, got \(reply)",
                      file: file, line: line)
    }

    /// Mount; returns the root inode (fails the test otherwise).
    func mount(file: StaticString = #filePath, line: UInt = #line) throws -> MountResp {
        let reply = client.call(.mount, MountReq())
        return try XCTUnwrap(decode(reply, MountResp.self, .mount, file: file, line: line), "Mount failed: \(reply)",
                             file: file, line: line)
    }

    /// Starts the gofer and mounts: the usual prologue. Returns the root FDID.
    func startAndMount(extraArguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> FDID {
        try startGofer(extraArguments: extraArguments, file: file, line: line)
        return try mount(file: file, line: line).root.controlFD
    }

    // MARK: Replies

    /// The reply decoded as `type` if it is a `mid` response; fails otherwise.
    func decode<M: WireMessage>(_ reply: Reply, _ type: M.Type, _ mid: MID,
                                file: StaticString = #filePath, line: UInt = #line) -> M? {
        guard case .message(let got, let payload, _, _) = reply, got == mid.rawValue else {
            XCTFail("expected a \(mid) response, got \(reply)", file: file, line: line)
            return nil
        }
        do {
            return try M.decode(payload)
        } catch {
            XCTFail("malformed \(mid) response (\(payload.count) bytes): \(error)", file: file, line: line)
            return nil
        }
    }

    /// Asserts an Error response with one of `errnos` (any errno if empty).
    func assertError(_ reply: Reply, _ errnos: Set<Int32> = [], _ context: String = "",
                     file: StaticString = #filePath, line: UInt = #line) {
        guard let errno = reply.errno else {
            XCTFail("\(context): expected an Error response\(errnos.isEmpty ? "" : " \(Self.names(errnos))"), got \(reply)",
                    file: file, line: line)
            return
        }
        if !errnos.isEmpty && !errnos.contains(errno) {
            XCTFail("\(context): expected \(Self.names(errnos)), got \(Self.names([errno]))", file: file, line: line)
        }
        if reply.fdCount != 0 {
            XCTFail("\(context): an Error response carried \(reply.fdCount) FDs", file: file, line: line)
        }
    }

    /// Asserts the reply is an Error or that the server hung up (both are
    /// acceptable answers to a broken message) — never a hang or success.
    func assertErrorOrClosed(_ reply: Reply, _ context: String = "", file: StaticString = #filePath, line: UInt = #line) {
        if reply.errno != nil || reply.isClosed { return }
        XCTFail("\(context): expected an Error or a hang-up, got \(reply)", file: file, line: line)
    }

    static func names(_ errnos: Set<Int32>) -> String {
        errnos.sorted().map { "\($0) (\(String(cString: strerror($0))))" }.joined(separator: " or ")
    }

    /// Checks the gofer still answers (Mount is always valid) and is alive.
    func assertStillServing(_ context: String = "", file: StaticString = #filePath, line: UInt = #line) {
        let reply = client.call(.mount, MountReq())
        guard reply.mid == MID.mount.rawValue else {
            XCTFail("\(context): gofer no longer serving: \(reply); log:\n\(gofer?.logTail() ?? "")", file: file, line: line)
            return
        }
        if let root = try? MountResp.decode(reply.payload ?? []) {
            _ = client.call(.close, CloseReq(fds: [root.root.controlFD]))
        }
    }

    // MARK: Typed requests

    func walk(_ dir: FDID, _ names: [[UInt8]], file: StaticString = #filePath, line: UInt = #line) -> WalkResp? {
        decode(client.call(.walk, WalkReq(dirFD: dir, path: names)), WalkResp.self, .walk, file: file, line: line)
    }

    func walk(_ dir: FDID, _ names: [String], file: StaticString = #filePath, line: UInt = #line) -> WalkResp? {
        walk(dir, names.map { Array($0.utf8) }, file: file, line: line)
    }

    /// Walks one existing component and returns its control FDID.
    func walkOne(_ dir: FDID, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Inode {
        let resp = walk(dir, [name], file: file, line: line)
        guard let resp, resp.status == .success, resp.inodes.count == 1 else {
            XCTFail("walk to \(name) failed: \(String(describing: resp))", file: file, line: line)
            throw TestAbort(reason: "walk to \(name) failed")
        }
        return resp.inodes[0]
    }

    func openAt(_ fd: FDID, flags: Int32, keepFDs: Bool = false) -> Reply {
        client.call(.openAt, OpenAtReq(fd: fd, flags: UInt32(bitPattern: flags)), keepFDs: keepFDs)
    }

    func close(_ ids: [FDID]) {
        let reply = client.call(.close, CloseReq(fds: ids))
        XCTAssertEqual(reply.mid, MID.close.rawValue, "Close failed: \(reply)")
    }

    func fstat(_ fd: FDID) -> Reply { client.call(.fStat, StatReq(fd: fd)) }

    // MARK: FD accounting

    /// The gofer's steady host FD count, printed.
    func hostFDCount(_ label: String) -> Int {
        let count = gofer?.steadyFDCount() ?? -1
        print("[fd] \(name) \(label): \(count) host FDs")
        return count
    }

    /// Asserts the gofer's host FD count returns to `baseline` (printing both).
    func assertHostFDs(back baseline: Int, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let now = gofer?.settledFDCount(expecting: baseline) ?? -1
        print("[fd] \(name) \(label): before \(baseline), after \(now)")
        if now != baseline {
            XCTFail("host FD leak (\(label)): \(baseline) before, \(now) after; open:\n"
                    + (gofer?.fdTargets().joined(separator: "\n") ?? ""), file: file, line: line)
        }
    }
}

/// Thrown to stop a test after an XCTFail already recorded why.
struct TestAbort: Error { let reason: String }

extension Array where Element == UInt8 {
    init(_ string: String) { self = Array(string.utf8) }
}

/// The names used by the name-validation cases.
enum HostileNames {
    static let slash = [UInt8]("a/b")
    static let escapeSlash = [UInt8]("../sentinel/x")
    static let dotDot = [UInt8]("..")
    static let dot = [UInt8](".")
    static let empty: [UInt8] = []
    static let embeddedNUL: [UInt8] = [0x61, 0x00, 0x62]
    static let trailingNUL: [UInt8] = [0x61, 0x00]
    static let long4K = [UInt8](repeating: 0x61, count: 4096)
    static let max255 = [UInt8](repeating: 0x62, count: 255)
    static let over256 = [UInt8](repeating: 0x63, count: 256)

    /// (label, name, acceptable errnos) of names the server must refuse.
    static var invalid: [(String, [UInt8], Set<Int32>)] {
        [
            ("'a/b'", slash, [EINVAL]),
            ("'../sentinel/x'", escapeSlash, [EINVAL]),
            ("'..'", dotDot, [EINVAL]),
            ("'.'", dot, [EINVAL]),
            ("empty", empty, [EINVAL]),
            ("embedded NUL", embeddedNUL, [EINVAL]),
            ("trailing NUL", trailingNUL, [EINVAL]),
            ("4 KiB", long4K, [ENAMETOOLONG]),
            ("256 bytes", over256, [ENAMETOOLONG]),
        ]
    }
}
