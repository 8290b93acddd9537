import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Files that can block a careless server: FIFOs with no peer, sockets with
/// no pending connection (the bound socket is shared with the client, which
/// can clear O_NONBLOCK on it). No request may block forever, and a hang-up
/// must still end the gofer.
final class SpecialFileTests: HostileTestCase {
    func testFIFOsNeverBlockTheServer() throws {
        XCTAssertEqual(mkfifo(sandbox.served + "/host-fifo", 0o666), 0)
        let root = try startAndMount()
        let made = client.call(.mknodAt, MknodAtReq(dirFD: root, uid: 0, gid: 0, mode: UInt16(S_IFIFO) | 0o666, minor: 0, major: 0,
                                                    name: [UInt8]("client-fifo")))
        XCTAssertTrue(made.errno != nil || made.mid == MID.mknodAt.rawValue, "MknodAt FIFO: \(made)")
        for name in ["host-fifo", "client-fifo"] where sandbox.lstatServed(name) != nil {
            let fifo = try walkOne(root, name).controlFD
            for flags in [O_RDONLY, O_WRONLY, O_RDWR] {
                let opened = client.call(mid: MID.openAt.rawValue, payload: OpenAtReq(fd: fifo, flags: UInt32(flags)).encoded(),
                                         timeout: 3)
                XCTAssertTrue(opened.errno != nil || opened.mid == MID.openAt.rawValue, "OpenAt \(name) flags \(flags): \(opened)")
                guard let open = try? OpenAtResp.decode(opened.payload ?? []), opened.mid == MID.openAt.rawValue else { continue }
                let read = client.call(mid: MID.pRead.rawValue, payload: PReadReq(offset: 0, fd: open.openFD, count: 100).encoded(),
                                       timeout: 3)
                XCTAssertNotNil(read.mid, "PRead on \(name) (flags \(flags)): \(read)")
                let write = client.call(mid: MID.pWrite.rawValue, payload: PWriteReq(offset: 0, fd: open.openFD, buf: [1]).encoded(),
                                        timeout: 3)
                XCTAssertNotNil(write.mid, "PWrite on \(name) (flags \(flags)): \(write)")
                close([open.openFD])
            }
            let connect = client.call(mid: MID.connect.rawValue, payload: ConnectReq(fd: fifo, sockType: 1).encoded(), timeout: 3)
            assertError(connect, [ENOTSOCK, ECONNREFUSED, EINVAL], "Connect to \(name)")
        }
    }

    func testAcceptWithNothingPendingDoesNotBlock() throws {
        let root = try startAndMount()
        let bound = client.call(.bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: [UInt8]("sock")),
                                keepFDs: true)
        let resp = try XCTUnwrap(decode(bound, BindAtResp.self, .bindAt))
        defer { bound.fds.forEach { _ = Glibc.close($0) } }
        XCTAssertEqual(bound.fds.count, 1, "BindAt donates the bound socket")
        XCTAssertEqual(client.call(.listen, ListenReq(fd: resp.boundSocketFD, backlog: 2)).mid, MID.listen.rawValue)
        let accepted = client.call(mid: MID.accept.rawValue, payload: AcceptReq(fd: resp.boundSocketFD).encoded(), timeout: 3)
        assertError(accepted, [EAGAIN], "Accept with nothing pending")
    }

    /// The donated bound socket shares its open file description with the
    /// gofer's: the sandbox clears O_NONBLOCK on it, then asks for Accept.
    func testAcceptAfterClientClearsNonBlockingStillEndsOnHangUp() throws {
        exitTimeout = 3
        let root = try startAndMount()
        let bound = client.call(.bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: [UInt8]("sock")),
                                keepFDs: true)
        let resp = try XCTUnwrap(decode(bound, BindAtResp.self, .bindAt))
        defer { bound.fds.forEach { _ = Glibc.close($0) } }
        XCTAssertEqual(client.call(.listen, ListenReq(fd: resp.boundSocketFD, backlog: 2)).mid, MID.listen.rawValue)
        for fd in bound.fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        }
        let accepted = client.call(mid: MID.accept.rawValue, payload: AcceptReq(fd: resp.boundSocketFD).encoded(), timeout: 2)
        if case .timedOut = accepted {
            print("[socket] \(name): Accept blocked in the gofer after the client cleared O_NONBLOCK on the shared socket")
        } else {
            assertError(accepted, [EAGAIN], "Accept with nothing pending, O_NONBLOCK cleared by the client")
        }
        // Whatever Accept did, hanging up must end the gofer (tearDown: exit 0 within 10 s).
    }

    func testConnectToBoundSocketAndOddSocketTypes() throws {
        let root = try startAndMount()
        let bound = client.call(.bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: [UInt8]("s")))
        let resp = try XCTUnwrap(decode(bound, BindAtResp.self, .bindAt))
        XCTAssertEqual(client.call(.listen, ListenReq(fd: resp.boundSocketFD, backlog: -1)).mid, MID.listen.rawValue)
        let sock = resp.child.controlFD
        for type: UInt32 in [0, 3, 4, 6, 10, 0x80801, .max] {
            let reply = client.call(.connect, ConnectReq(fd: sock, sockType: type))
            XCTAssertTrue(reply.errno != nil || reply.mid == MID.connect.rawValue, "Connect type \(type): \(reply)")
        }
        for type: UInt32 in [0, 3, 0x80801, .max] {
            let name = [UInt8]("b\(type)")
            assertError(client.call(.bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: type, name: name)),
                        [], "BindAt type \(type)")
            XCTAssertNil(sandbox.lstatServed("b\(type)"))
        }
        let ok = client.call(.connect, ConnectReq(fd: sock, sockType: 1))
        XCTAssertEqual(ok.mid, MID.connect.rawValue, "Connect to the listening socket: \(ok)")
        XCTAssertEqual(ok.fdCount, 1)
        assertError(client.call(.openAt, OpenAtReq(fd: sock, flags: 0)), [ENXIO], "OpenAt on a socket")
        assertError(client.call(.listen, ListenReq(fd: sock, backlog: 1)), [EINVAL], "Listen on the socket's control FD")
        // The bound-socket FD where a control or open FD is needed.
        let boundFD = resp.boundSocketFD
        assertError(client.call(.walk, WalkReq(dirFD: boundFD, path: ["x"])), [EINVAL], "Walk from a bound-socket FD")
        assertError(fstat(boundFD), [EINVAL], "FStat on a bound-socket FD")
        assertError(client.call(.openAt, OpenAtReq(fd: boundFD, flags: 0)), [EINVAL], "OpenAt on a bound-socket FD")
        assertError(client.call(.pRead, PReadReq(offset: 0, fd: boundFD, count: 1)), [EINVAL], "PRead on a bound-socket FD")
        assertError(client.call(.connect, ConnectReq(fd: boundFD, sockType: 1)), [EINVAL], "Connect on a bound-socket FD")
        close([boundFD])
        assertError(client.call(.accept, AcceptReq(fd: boundFD)), [EBADF], "Accept after Close")
    }

    /// Same sharing for FIFOs: the gofer opens them O_NONBLOCK and donates a
    /// dup. The sandbox clears O_NONBLOCK on its copy, then asks the gofer to
    /// read an empty FIFO that has a writer (itself, O_RDWR).
    func testFIFOReadAfterClientClearsNonBlockingStillEndsOnHangUp() throws {
        exitTimeout = 3
        let root = try startAndMount()
        let made = client.call(.mknodAt, MknodAtReq(dirFD: root, uid: 0, gid: 0, mode: UInt16(S_IFIFO) | 0o666, minor: 0, major: 0,
                                                    name: [UInt8]("fifo")))
        let fifo = try XCTUnwrap(decode(made, MknodAtResp.self, .mknodAt)).child.controlFD
        let opened = openAt(fifo, flags: O_RDWR, keepFDs: true)
        let open = try XCTUnwrap(decode(opened, OpenAtResp.self, .openAt)).openFD
        defer { opened.fds.forEach { _ = Glibc.close($0) } }
        XCTAssertEqual(opened.fds.count, 1, "OpenAt of a FIFO donates a host FD")
        for fd in opened.fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
        let read = client.call(mid: MID.pRead.rawValue, payload: PReadReq(offset: 0, fd: open, count: 16).encoded(), timeout: 2)
        if case .timedOut = read {
            print("[fifo] \(name): PRead blocked in the gofer after the client cleared O_NONBLOCK on the shared FIFO")
        } else {
            // pread(2) on a FIFO is ESPIPE, so the gofer never waits on one.
            assertError(read, [EAGAIN, ESPIPE], "PRead of an empty FIFO")
        }
        // Fill the pipe from our side, then ask the gofer to write more.
        if let mine = opened.fds.first {
            _ = fcntl(mine, F_SETFL, fcntl(mine, F_GETFL) | O_NONBLOCK)
            let chunk = [UInt8](repeating: 7, count: 4096)
            while Glibc.write(mine, chunk, chunk.count) > 0 {}
            _ = fcntl(mine, F_SETFL, fcntl(mine, F_GETFL) & ~O_NONBLOCK)
        }
        let write = client.call(mid: MID.pWrite.rawValue, payload: PWriteReq(offset: 0, fd: open, buf: [1, 2, 3]).encoded(), timeout: 2)
        if case .timedOut = write {
            print("[fifo] \(name): PWrite blocked in the gofer on a full FIFO")
        } else {
            assertError(write, [EAGAIN, ESPIPE], "PWrite to a full FIFO")
        }
    }

    /// connect(2) on a Unix stream socket blocks while the listener's backlog
    /// is full. The sandbox binds and listens (backlog 0) but never accepts,
    /// then asks the gofer to Connect again and again.
    func testConnectToAFullBacklogDoesNotBlock() throws {
        exitTimeout = 3
        let root = try startAndMount()
        let bound = try XCTUnwrap(decode(client.call(.bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: 1,
                                                                        name: [UInt8]("full"))), BindAtResp.self, .bindAt))
        XCTAssertEqual(client.call(.listen, ListenReq(fd: bound.boundSocketFD, backlog: 0)).mid, MID.listen.rawValue)
        var outcomes: [String] = []
        for _ in 0..<4 {
            let reply = client.call(mid: MID.connect.rawValue, payload: ConnectReq(fd: bound.child.controlFD, sockType: 1).encoded(),
                                    timeout: 2)
            outcomes.append("\(reply)")
            if case .timedOut = reply {
                XCTFail("Connect blocked in the gofer on a listener whose backlog is full (after \(outcomes.count - 1) connects)")
                break
            }
        }
        print("[socket] \(name): \(outcomes)")
        // tearDown: the hang-up must still end the gofer.
    }

    /// Device nodes the host left in the tree: a block device is never
    /// served, a character device is never opened (passthrough defaults).
    func testHostDeviceNodesAreNotOpened() throws {
        let block = sandbox.served + "/blockdev", char = sandbox.served + "/chardev"
        guard mknod(block, S_IFBLK | 0o666, dev_t((7 << 8) | 0)) == 0, mknod(char, S_IFCHR | 0o666, dev_t((1 << 8) | 3)) == 0 else {
            XCTFail("cannot create device nodes here (errno \(errno)); the test needs root and a dev-enabled /tmp")
            return
        }
        let root = try startAndMount()
        let walkedBlock = client.call(.walk, WalkReq(dirFD: root, path: ["blockdev"]))
        if let resp = try? WalkResp.decode(walkedBlock.payload ?? []), walkedBlock.mid == MID.walk.rawValue, let inode = resp.inodes.first {
            assertError(openAt(inode.controlFD, flags: O_RDONLY), [EPERM, EINVAL, ENXIO], "OpenAt of a block device")
        } else {
            assertError(walkedBlock, [EPERM], "Walk to a block device")
        }
        let c = try walkOne(root, "chardev").controlFD
        assertError(openAt(c, flags: O_RDWR), [EPERM, EINVAL, ENXIO], "OpenAt of a character device")
    }
}
