import Foundation
import XCTest
@testable import HostProvider
@testable import Lisafs
#if canImport(Glibc)
import Glibc
#endif

/// HostProvider calls the sandbox could otherwise make wait forever: each
/// runs on its own thread under a deadline, so a regression fails (and is
/// then unblocked) instead of hanging the suite.
final class HostProviderBlockingTests: XCTestCase {
    var tree: TemporaryTree!
    var provider: HostProvider!
    var root: HostProvider.Node!

    override func setUpWithError() throws {
        tree = try TemporaryTree()
        provider = try HostProvider(rootPath: tree.path)
        root = try provider.mountRoot().node
    }

    override func tearDown() {
        if let root { provider.close(node: root) }
        tree?.remove()
    }

    private func name(_ s: String) -> FileName { try! FileName(validating: s) }

    /// Runs `body` on a thread; if it has not returned after `seconds`, fails,
    /// then calls `unblock` every 50 ms until it returns. Returns what `body`
    /// threw (nil if nothing).
    private func withDeadline(_ seconds: Double, _ what: String, unblock: () -> Void,
                              _ body: @escaping @Sendable () throws -> Void,
                              file: StaticString = #filePath, line: UInt = #line) -> Error? {
        final class Outcome: @unchecked Sendable { var error: Error? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do { try body() } catch { outcome.error = error }
            done.signal()
        }
        if done.wait(timeout: .now() + seconds) == .timedOut {
            XCTFail("\(what) blocked for \(seconds) s", file: file, line: line)
            repeat { unblock() } while done.wait(timeout: .now() + 0.05) == .timedOut
        }
        return outcome.error
    }

    private func bindListening(_ socketName: String, backlog: Int32) throws -> BoundSocketCreated<HostProvider.Node, HostProvider.BoundSocket> {
        let bound = try provider.bind(in: root, name(socketName), socketType: 1,
                                      attributes: .init(mode: 0o600, uid: NoUID, gid: NoGID))
        try provider.listen(bound.boundSocket, backlog: backlog)
        return bound
    }

    private func release(_ bound: BoundSocketCreated<HostProvider.Node, HostProvider.BoundSocket>) {
        provider.close(boundSocket: bound.boundSocket)
        provider.close(node: bound.node)
        _ = Glibc.close(bound.donatedFD)
    }

    private func isReadable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1
    }

    /// The client owns the donated FD and may clear O_NONBLOCK on it. That
    /// must not make Accept wait for a connection.
    func testAcceptStaysNonBlockingWhateverTheClientDoesToItsFD() throws {
        let bound = try bindListening("sock", backlog: 4)
        defer { release(bound) }
        let flags = fcntl(bound.donatedFD, F_GETFL)
        XCTAssertEqual(fcntl(bound.donatedFD, F_SETFL, flags & ~O_NONBLOCK), 0)
        let socket = bound.boundSocket
        let provider = provider!
        let error = withDeadline(2, "Accept with nothing pending", unblock: {
            // Old behaviour: the shared socket was blocking now; give it a connection.
            let walked = try? provider.walk(root, name("sock")).node
            if let walked, let fd = try? provider.connect(walked, socketType: 1) { _ = Glibc.close(fd) }
        }) {
            let accepted = try provider.accept(socket)
            _ = Glibc.close(accepted.fd)
        }
        XCTAssertEqual(error as? Errno, .EAGAIN)
    }

    /// The notification FD is readable exactly while a connection is pending.
    func testNotificationFDSignalsPendingConnections() throws {
        let bound = try provider.bind(in: root, name("sock"), socketType: 1,
                                      attributes: .init(mode: 0o600, uid: NoUID, gid: NoGID))
        defer { release(bound) }
        XCTAssertFalse(isReadable(bound.donatedFD), "not readable before Listen")
        try provider.listen(bound.boundSocket, backlog: 4)
        try provider.listen(bound.boundSocket, backlog: 8)  // again: still fine
        XCTAssertFalse(isReadable(bound.donatedFD), "nothing pending")
        let walked = try provider.walk(root, name("sock")).node
        defer { provider.close(node: walked) }
        let client = try provider.connect(walked, socketType: 1)
        defer { _ = Glibc.close(client) }
        XCTAssertTrue(isReadable(bound.donatedFD), "a connection is pending")
        let accepted = try provider.accept(bound.boundSocket)
        defer { _ = Glibc.close(accepted.fd) }
        XCTAssertFalse(isReadable(bound.donatedFD), "accepted: nothing pending")
        XCTAssertEqual(Glibc.write(client, "x", 1), 1)
        var byte: UInt8 = 0
        XCTAssertEqual(Glibc.read(accepted.fd, &byte, 1), 1, "the accepted FD is the client's peer")
    }

    /// A listener that never accepts (the sandbox's own, via BindAt): once its
    /// backlog is full, Connect answers EAGAIN instead of waiting.
    func testConnectToAFullBacklogIsEAGAIN() throws {
        let bound = try bindListening("full", backlog: 0)
        defer { release(bound) }
        let walked = try provider.walk(root, name("full")).node
        defer { provider.close(node: walked) }
        final class Connected: @unchecked Sendable { var fds: [Int32] = [] }
        let connected = Connected()
        defer { connected.fds.forEach { _ = Glibc.close($0) } }
        let provider = provider!
        let socket = bound.boundSocket
        let error = withDeadline(2, "Connect to a full backlog", unblock: {
            while let accepted = try? provider.accept(socket) { _ = Glibc.close(accepted.fd) }
        }) {
            for _ in 0..<4 { connected.fds.append(try provider.connect(walked, socketType: 1)) }
        }
        XCTAssertEqual(error as? Errno, .EAGAIN, "after \(connected.fds.count) connects")
        XCTAssertFalse(connected.fds.isEmpty, "the first connect fits the backlog")
        for fd in connected.fds {
            XCTAssertEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "the donated connection is an ordinary blocking socket")
        }
    }

    /// F_SETLEASE (GNU-only, not in Swift's Glibc).
    static let setLease: Int32 = 1024

    /// A read lease (the sandbox can take one on a file it owns, through the
    /// FD the gofer donated) makes opening for write wait lease-break-time
    /// (45 s by default) for the holder. The gofer must answer EAGAIN at once.
    func testOpeningALeasedFileForWritingIsEAGAIN() throws {
        try tree.write("leased", "data")
        let previous = signal(SIGIO, SIG_IGN)  // the lease break is signalled to the holder: us
        defer { signal(SIGIO, previous) }
        let holder = Glibc.open(tree.path + "/leased", O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(holder, 0)
        defer { _ = Glibc.close(holder) }
        let node = try provider.walk(root, name("leased")).node
        defer { provider.close(node: node) }
        func takeLease() throws {
            guard fcntl(holder, Self.setLease, Int32(F_RDLCK)) == 0 else {
                throw XCTSkip("cannot take a read lease here (errno \(errno))")
            }
        }
        let provider = provider!
        let unblock: @Sendable () -> Void = { _ = fcntl(holder, Self.setLease, Int32(F_UNLCK)) }
        for flags in [O_WRONLY, O_RDWR, O_WRONLY | O_TRUNC] {
            try takeLease()
            let error = withDeadline(2, "OpenAt(flags \(flags)) of a leased file", unblock: unblock) {
                let opened = try provider.open(node, flags: OpenFlags(filtering: UInt32(flags)))
                provider.close(openFile: opened.openFile)
                if let fd = opened.donatedFD { _ = Glibc.close(fd) }
            }
            XCTAssertEqual(error as? Errno, .EAGAIN, "flags \(flags)")
        }
        // SetStat(size) reopens the file for writing too.
        try takeLease()
        let truncate = SetStatChanges(mask: StatxMask.size, size: 1)
        let result = withDeadline(2, "SetStat(size) of a leased file", unblock: unblock) {
            if let failure = provider.setStat(node, truncate).failure { throw failure }
        }
        XCTAssertEqual(result as? Errno, .EAGAIN)
        // Once the lease is gone, the same opens work, and O_NONBLOCK is the client's choice.
        unblock()
        let opened = try provider.open(node, flags: OpenFlags(filtering: UInt32(O_RDWR)))
        defer {
            provider.close(openFile: opened.openFile)
            if let fd = opened.donatedFD { _ = Glibc.close(fd) }
        }
        XCTAssertEqual(fcntl(opened.openFile.fd, F_GETFL) & O_NONBLOCK, 0, "the donated description is not left non-blocking")
    }

    /// An opt-in character device whose pread(2) blocks: /dev/kmsg, once
    /// every record was read, waits for the next kernel message. The client
    /// may clear O_NONBLOCK on its donated FD; the gofer's own PRead must
    /// still not wait. (Most blocking devices — ttys, input — are streams,
    /// where pread is ESPIPE and never waits, as for FIFOs.)
    func testCharacterDeviceReadsStayNonBlockingWhateverTheClientDoes() throws {
        let devices = try HostProvider(rootPath: "/dev", options: .init(allowCharacterDevices: true))
        let devicesRoot = try devices.mountRoot().node
        defer { devices.close(node: devicesRoot) }
        let node = try devices.walk(devicesRoot, name("kmsg")).node
        defer { devices.close(node: node) }
        let opened: Opened<HostProvider.OpenFile>
        do {
            opened = try devices.open(node, flags: OpenFlags(filtering: UInt32(O_RDONLY)))
        } catch {
            throw XCTSkip("cannot open /dev/kmsg here: \(error)")
        }
        defer { devices.close(openFile: opened.openFile) }
        let donated = try XCTUnwrap(opened.donatedFD, "character devices donate an FD to wait on")
        defer { _ = Glibc.close(donated) }
        let file = opened.openFile
        // HostProvider.read fills the buffer with one pread per record until
        // the next record does not fit or none is left; it returns what it got.
        let readRecords: @Sendable () throws -> Int = {
            var buffer = [UInt8](repeating: 0, count: 8192)
            return try buffer.withUnsafeMutableBytes { try devices.read(file, into: $0, at: 0) }
        }
        XCTAssertGreaterThan(try readRecords(), 0, "the kernel log is not empty: records are returned, not lost")
        // Catch up with the log (bounded: the kernel keeps a finite buffer).
        var drained = false
        for _ in 0..<1_000_000 {
            do {
                _ = try readRecords()
            } catch let error as Errno where error == .EAGAIN {
                drained = true
                break
            }
        }
        XCTAssertTrue(drained, "the gofer reads /dev/kmsg non-blocking")
        XCTAssertEqual(fcntl(donated, F_SETFL, fcntl(donated, F_GETFL) & ~O_NONBLOCK), 0)
        let error = withDeadline(2, "PRead of /dev/kmsg with nothing new", unblock: {
            let kmsg = Glibc.open("/dev/kmsg", O_WRONLY | O_CLOEXEC)
            // Long records fill the gofer's read buffer in a few rounds.
            let line = "sealgofer test: unblocking a gofer read " + String(repeating: ".", count: 900) + "\n"
            _ = Glibc.write(kmsg, line, line.utf8.count)
            _ = Glibc.close(kmsg)
        }) {
            _ = try readRecords()
        }
        // No error: a kernel message arrived meanwhile and was read.
        XCTAssertTrue(error == nil || error as? Errno == .EAGAIN, "got \(String(describing: error))")
    }
}
