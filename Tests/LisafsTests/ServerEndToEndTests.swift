import CLinux
import Foundation
import XCTest
@testable import HostProvider
@testable import Lisafs

/// In-process server over a socketpair, spoken to with raw lisafs frames.
final class ServerEndToEndTests: XCTestCase {
    var tree: TemporaryTree!
    var client: RawLisafsClient!
    var root: Inode!

    override func setUpWithError() throws {
        tree = try TemporaryTree()
        try tree.write("hello.txt", "hello world")
        try tree.mkdir("sub")
        try tree.write("sub/inner.txt", "inner")
        try tree.symlink("link", to: "/etc")
        client = try makeClient()
        root = try client.mount().root
    }

    override func tearDown() {
        client?.shutdownAndWait()
        tree?.remove()
    }

    private func makeClient(readonly: Bool = false) throws -> RawLisafsClient {
        let provider = try HostProvider(rootPath: tree.path)
        return try RawLisafsClient(server: Server(provider: provider, options: .init(readonly: readonly)))
    }

    private func assertServerError(_ expected: Errno, _ body: () throws -> Any,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) {
            XCTAssertEqual(($0 as? RawLisafsClient.ServerError)?.errno, expected, file: file, line: line)
        }
    }

    // MARK: Mount and Walk

    func testMountAdvertisesRootAndMessages() throws {
        let mount = try client.mount()
        XCTAssertEqual(FileType.of(mount.root.stat), FileType.directory)
        XCTAssertNotEqual(mount.root.controlFD, root.controlFD, "each Mount gets its own control FD")
        XCTAssertEqual(mount.maxMessageSize, MountResp.recommendedMaxMessageSize)
        let advertised = Set(mount.supportedMIDs)
        XCTAssertTrue(advertised.isSuperset(of: [.mount, .channel, .walk, .walkStat, .openAt, .pRead, .pWrite,
                                                .getdents64, .flush, .renameAt2]))
        XCTAssertFalse(advertised.contains(.error))
    }

    func testWalkSuccessMissingAndSymlink() throws {
        let ok = try client.walk(root.controlFD, ["sub", "inner.txt"])
        XCTAssertEqual(ok.status, .success)
        XCTAssertEqual(ok.inodes.map { FileType.of($0.stat) }, [FileType.directory, FileType.regular])
        XCTAssertEqual(ok.inodes[1].stat.size, 5)

        let missing = try client.walk(root.controlFD, ["sub", "nope", "deeper"])
        XCTAssertEqual(missing.status, .componentDoesNotExist)
        XCTAssertEqual(missing.inodes.count, 1, "partial walk returns what was walked")

        let symlink = try client.walk(root.controlFD, ["link", "passwd"])
        XCTAssertEqual(symlink.status, .componentSymlink, "the server never follows a symlink")
        XCTAssertEqual(symlink.inodes.count, 1)
        XCTAssertEqual(FileType.of(symlink.inodes[0].stat), FileType.symlink)
        let target = try client.call(.readLinkAt, ReadLinkAtReq(fd: symlink.inodes[0].controlFD),
                                     expecting: ReadLinkAtResp.self)
        XCTAssertEqual(target.target, Array("/etc".utf8))
    }

    func testWalkRejectsUnsafeNamesAndNonDirectories() throws {
        for bad in [[".."], ["."], ["a/b"], [""], ["sub", ".."]] {
            assertServerError(.EINVAL) { try self.client.walk(self.root.controlFD, bad) }
        }
        assertServerError(.EINVAL) {
            try self.client.call(.walk, WalkReq(dirFD: self.root.controlFD, path: [[0x61, 0, 0x62]]), expecting: WalkResp.self)
        }
        let file = try client.walk(root.controlFD, ["hello.txt"]).inodes[0].controlFD
        assertServerError(.ENOTDIR) { try self.client.walk(file, ["x"]) }
    }

    func testWalkStat() throws {
        let stats = try client.call(.walkStat, WalkReq(dirFD: root.controlFD, path: ["", "sub", "inner.txt"]),
                                    expecting: WalkStatResp.self).stats
        XCTAssertEqual(stats.count, 3, "start itself, sub, inner.txt")
        XCTAssertEqual(stats[0].ino, root.stat.ino)
        XCTAssertEqual(stats[2].size, 5)
        let partial = try client.call(.walkStat, WalkReq(dirFD: root.controlFD, path: ["sub", "nope", "x"]),
                                      expecting: WalkStatResp.self).stats
        XCTAssertEqual(partial.count, 1, "a missing component ends the walk successfully")
        XCTAssertEqual(try client.failure(.walkStat, WalkReq(dirFD: root.controlFD, path: ["hello.txt", "x"])), .ENOTDIR,
                       "walking through a regular file fails, as on gVisor's fsgofer")
        let viaLink = try client.call(.walkStat, WalkReq(dirFD: root.controlFD, path: ["link", "passwd"]),
                                      expecting: WalkStatResp.self).stats
        XCTAssertEqual(viaLink.count, 1)
        XCTAssertEqual(FileType.of(viaLink[0]), FileType.symlink)
    }

    // MARK: FD semantics

    func testStaleAndWrongKindFDs() throws {
        XCTAssertEqual(try client.failure(.fStat, StatReq(fd: 0)), .EBADF)
        XCTAssertEqual(try client.failure(.fStat, StatReq(fd: 12345)), .EBADF)
        let file = try client.walk(root.controlFD, ["hello.txt"]).inodes[0].controlFD
        XCTAssertEqual(try client.failure(.pRead, PReadReq(offset: 0, fd: file, count: 4)), .EINVAL,
                       "PRead needs an open FD, not a control FD")
        _ = try client.call(.close, CloseReq(fds: [file]), expecting: CloseResp.self)
        XCTAssertEqual(try client.failure(.fStat, StatReq(fd: file)), .EBADF, "closed FDID")
        XCTAssertEqual(try client.failure(.openAt, OpenAtReq(fd: file, flags: 0)), .EBADF)
    }

    // MARK: Open, read, write

    func testOpenReadWriteAndDonatedFD() throws {
        let file = try client.walk(root.controlFD, ["hello.txt"]).inodes[0].controlFD
        var donated: [Int32] = []
        let opened = try client.call(.openAt, OpenAtReq(fd: file, flags: UInt32(O_RDWR)), expecting: OpenAtResp.self,
                                     fds: &donated)
        XCTAssertEqual(donated.count, 1, "a regular file's host FD is donated")
        defer { donated.forEach { _ = Glibc.close($0) } }

        let read = try client.call(.pRead, PReadReq(offset: 6, fd: opened.openFD, count: 100), expecting: PReadResp.self)
        XCTAssertEqual(read.buf, Array("world".utf8))
        let wrote = try client.call(.pWrite, PWriteReq(offset: 0, fd: opened.openFD, buf: Array("HELLO".utf8)),
                                    expecting: PWriteResp.self)
        XCTAssertEqual(wrote.count, 5)
        XCTAssertEqual(try tree.read("hello.txt"), "HELLO world")

        var viaHost = [UInt8](repeating: 0, count: 5)
        XCTAssertEqual(pread(donated[0], &viaHost, 5, 0), 5)
        XCTAssertEqual(viaHost, Array("HELLO".utf8), "the donated FD is the same file")

        let stat = try client.call(.fStat, StatReq(fd: opened.openFD), expecting: Statx.self)
        XCTAssertEqual(stat.size, 11)
        _ = try client.call(.flush, FlushReq(fd: opened.openFD), expecting: FlushResp.self)
        _ = try client.call(.fSync, FsyncReq(fds: [opened.openFD]), expecting: FsyncResp.self)

        let readOnly = try client.call(.openAt, OpenAtReq(fd: file, flags: UInt32(O_RDONLY)), expecting: OpenAtResp.self)
        XCTAssertEqual(try client.failure(.pWrite, PWriteReq(offset: 0, fd: readOnly.openFD, buf: [1])), .EBADF)
        XCTAssertEqual(try client.failure(.fAllocate, FAllocateReq(fd: readOnly.openFD, mode: 0, offset: 0, length: 1)), .EBADF)
    }

    func testOpenRulesForDirectoriesAndSymlinks() throws {
        XCTAssertEqual(try client.failure(.openAt, OpenAtReq(fd: root.controlFD, flags: UInt32(O_RDWR))), .EISDIR)
        let link = try client.walk(root.controlFD, ["link"]).inodes[0].controlFD
        XCTAssertEqual(try client.failure(.openAt, OpenAtReq(fd: link, flags: 0)), .EINVAL)
        XCTAssertEqual(try client.failure(.mkdirAt, MkdirAtReq(dirFD: link, uid: NoUID, gid: NoGID, mode: 0o755,
                                                               name: Array("x".utf8))), .ENOTDIR)
    }

    func testOpenCreateMkdirSymlinkUnlinkRename() throws {
        let created = try client.call(.openCreateAt, OpenCreateAtReq(dirFD: root.controlFD, uid: NoUID, gid: NoGID,
                                                                     mode: 0o640, flags: UInt32(O_RDWR), name: Array("new.txt".utf8)),
                                      expecting: OpenCreateAtResp.self)
        XCTAssertEqual(FileType.of(created.child.stat), FileType.regular)
        XCTAssertEqual(UInt32(created.child.stat.mode) & 0o777, 0o640)
        _ = try client.call(.pWrite, PWriteReq(offset: 0, fd: created.newFD, buf: Array("data".utf8)), expecting: PWriteResp.self)
        XCTAssertEqual(try tree.read("new.txt"), "data")
        XCTAssertEqual(try client.failure(.openCreateAt, OpenCreateAtReq(dirFD: root.controlFD, uid: NoUID, gid: NoGID,
                                                                         mode: 0o640, flags: 0, name: Array("new.txt".utf8))),
                       .EEXIST)

        let dir = try client.call(.mkdirAt, MkdirAtReq(dirFD: root.controlFD, uid: NoUID, gid: NoGID, mode: 0o750,
                                                       name: Array("made".utf8)), expecting: MkdirAtResp.self)
        XCTAssertEqual(FileType.of(dir.childDir.stat), FileType.directory)
        _ = try client.call(.symlinkAt, SymlinkAtReq(dirFD: dir.childDir.controlFD, uid: NoUID, gid: NoGID,
                                                     name: Array("sl".utf8), target: Array("../hello.txt".utf8)),
                            expecting: SymlinkAtResp.self)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: tree.url("made/sl").path), "../hello.txt")

        _ = try client.call(.renameAt, RenameAtReq(oldDir: root.controlFD, newDir: dir.childDir.controlFD,
                                                   oldName: Array("new.txt".utf8), newName: Array("moved.txt".utf8)),
                            expecting: RenameAtResp.self)
        XCTAssertTrue(tree.exists("made/moved.txt"))
        XCTAssertFalse(tree.exists("new.txt"))
        // The moved file's control FD still works (it is FD-based, not path-based).
        XCTAssertEqual(try client.call(.fStat, StatReq(fd: created.child.controlFD), expecting: Statx.self).size, 4)

        _ = try client.call(.unlinkAt, UnlinkAtReq(dirFD: dir.childDir.controlFD, flags: 0, name: Array("moved.txt".utf8)),
                            expecting: UnlinkAtResp.self)
        XCTAssertFalse(tree.exists("made/moved.txt"))
        XCTAssertEqual(try client.failure(.renameAt2, RenameAt2Req(oldDir: root.controlFD, newDir: root.controlFD,
                                                                   oldName: Array("hello.txt".utf8),
                                                                   newName: Array("sub".utf8), flags: 1)), .EEXIST,
                       "RENAME_NOREPLACE reaches the host")
    }

    func testDeletedDirectoryCannotBeWalkedOrFilled() throws {
        try tree.mkdir("doomed")
        let doomed = try client.walk(root.controlFD, ["doomed"]).inodes[0].controlFD
        _ = try client.call(.unlinkAt, UnlinkAtReq(dirFD: root.controlFD, flags: 0x200, name: Array("doomed".utf8)),
                            expecting: UnlinkAtResp.self)
        // A client could recreate "doomed" as a symlink; the old node must stay dead.
        try tree.symlink("doomed", to: "/etc")
        let walk = try client.walk(doomed, ["passwd"])
        XCTAssertEqual(walk.status, .componentDoesNotExist)
        XCTAssertEqual(try client.failure(.mkdirAt, MkdirAtReq(dirFD: doomed, uid: NoUID, gid: NoGID, mode: 0o755,
                                                               name: Array("x".utf8))), .EINVAL)
    }

    // MARK: Getdents

    func testGetdentsHonoursCountAndRestarts() throws {
        let expected = Set((0..<60).map { "file-\($0)-with-a-longer-name" })
        for name in expected { try tree.write("sub/" + name, "") }
        let sub = try client.walk(root.controlFD, ["sub"]).inodes[0].controlFD
        let dir = try client.call(.openAt, OpenAtReq(fd: sub, flags: 0), expecting: OpenAtResp.self).openFD

        var seen: [String] = []
        var calls = 0
        while true {
            let batch = try client.call(.getdents64, Getdents64Req(dirFD: dir, count: 512), expecting: Getdents64Resp.self)
            if batch.dirents.isEmpty { break }
            calls += 1
            XCTAssertLessThanOrEqual(batch.dirents.count, 512 / 24, "bounded by the client's count")
            seen += batch.dirents.map { String(decoding: $0.name, as: UTF8.self) }
            XCTAssertLessThan(calls, 100)
        }
        XCTAssertGreaterThan(calls, 3, "a small count needs several calls")
        XCTAssertEqual(seen.count, Set(seen).count, "no entry twice")
        XCTAssertEqual(Set(seen), expected.union([".", "..", "inner.txt"]), "no entry lost")

        let again = try client.call(.getdents64, Getdents64Req(dirFD: dir, count: -65536), expecting: Getdents64Resp.self)
        XCTAssertFalse(again.dirents.isEmpty, "a negative count seeks to the start")
        XCTAssertEqual(try client.failure(.getdents64, Getdents64Req(dirFD: sub, count: 100)), .EINVAL, "needs an open FD")
    }

    // MARK: Policy and robustness

    func testReadonlyMountRefusesMutations() throws {
        client.shutdownAndWait()
        client = try makeClient(readonly: true)
        root = try client.mount().root
        let file = try client.walk(root.controlFD, ["hello.txt"]).inodes[0].controlFD
        XCTAssertEqual(try client.failure(.openAt, OpenAtReq(fd: file, flags: UInt32(O_WRONLY))), .EROFS)
        XCTAssertEqual(try client.failure(.openAt, OpenAtReq(fd: file, flags: UInt32(O_RDONLY) | 0o1000)), .EROFS, "O_TRUNC")
        XCTAssertEqual(try client.failure(.mkdirAt, MkdirAtReq(dirFD: root.controlFD, uid: NoUID, gid: NoGID, mode: 0o755,
                                                               name: Array("x".utf8))), .EROFS)
        XCTAssertEqual(try client.failure(.unlinkAt, UnlinkAtReq(dirFD: root.controlFD, flags: 0, name: Array("hello.txt".utf8))), .EROFS)
        XCTAssertEqual(try client.failure(.setStat, SetStatReq(fd: file, mask: StatxMask.size, size: 0)), .EROFS)
        XCTAssertEqual(try client.failure(.fSetXattr, FSetXattrReq(fd: file, flags: 0, name: Array("user.x".utf8), value: [1])), .EROFS)
        let opened = try client.call(.openAt, OpenAtReq(fd: file, flags: 0), expecting: OpenAtResp.self)
        XCTAssertEqual(try client.call(.pRead, PReadReq(offset: 0, fd: opened.openFD, count: 5), expecting: PReadResp.self).buf,
                       Array("hello".utf8))
        XCTAssertEqual(try tree.read("hello.txt"), "hello world")
    }

    func testBadInputGetsErrnoAndConnectionSurvives() throws {
        try client.send(mid: 200, payload: [])
        XCTAssertEqual(try client.receive().mid, MID.error.rawValue)
        try client.send(mid: 0, payload: [])
        let errorReply = try client.receive()
        XCTAssertEqual(try ErrorResp.decode(errorReply.payload).errno, UInt32(Errno.EINVAL.code))
        try client.send(mid: MID.walk.rawValue, payload: [1, 2, 3])          // truncated
        XCTAssertEqual(try ErrorResp.decode(try client.receive().payload).errno, UInt32(Errno.EIO.code))
        var hugeCount = WireWriter()
        hugeCount.u64(root.controlFD)
        hugeCount.u16(0xFFFF)                                                 // claims 65535 names
        try client.send(mid: MID.walk.rawValue, payload: hugeCount.bytes)
        XCTAssertEqual(try ErrorResp.decode(try client.receive().payload).errno, UInt32(Errno.EIO.code))
        XCTAssertEqual(try client.failure(.pRead, PReadReq(offset: 0, fd: root.controlFD, count: .max)), .EINVAL)
        XCTAssertEqual(try client.walk(root.controlFD, ["hello.txt"]).status, .success, "still serving")
    }

    func testOversizedReadIsRefused() throws {
        let file = try client.walk(root.controlFD, ["hello.txt"]).inodes[0].controlFD
        let opened = try client.call(.openAt, OpenAtReq(fd: file, flags: 0), expecting: OpenAtResp.self)
        XCTAssertEqual(try client.failure(.pRead, PReadReq(offset: 0, fd: opened.openFD, count: .max)), .ENOBUFS)
    }

    // MARK: Channels and teardown

    func testChannelCreationDonatesWindowAndSocket() throws {
        let reply = try client.call(.channel, ChannelReq())
        defer { reply.fds.forEach { _ = Glibc.close($0) } }
        XCTAssertEqual(reply.mid, MID.channel.rawValue)
        XCTAssertEqual(reply.fds.count, 2, "memfd of the packet window, then the fdchannel socket")
        let response = try ChannelResp.decode(reply.payload)
        XCTAssertGreaterThan(response.dataLength, UInt64(MountResp.recommendedMaxMessageSize))
        var channels = [reply]
        for _ in 0..<8 {
            let more = try client.call(.channel, ChannelReq())
            channels.append(more)
            if more.mid == MID.error.rawValue {
                XCTAssertEqual(try ErrorResp.decode(more.payload).errno, UInt32(Errno.ENOMEM.code), "channel limit")
                break
            }
        }
        XCTAssertEqual(channels.last?.mid, MID.error.rawValue)
        channels.dropFirst().forEach { $0.fds.forEach { _ = Glibc.close($0) } }
    }

    func testTeardownReleasesEveryHostFD() throws {
        client.shutdownAndWait()
        let before = openFDCount()
        client = try makeClient()
        root = try client.mount().root
        for _ in 0..<20 { _ = try client.walk(root.controlFD, ["sub", "inner.txt"]) }
        let file = try client.walk(root.controlFD, ["hello.txt"]).inodes[0].controlFD
        _ = try client.call(.openAt, OpenAtReq(fd: file, flags: 0), expecting: OpenAtResp.self)
        let channel = try client.call(.channel, ChannelReq())
        channel.fds.forEach { _ = Glibc.close($0) }
        XCTAssertGreaterThan(openFDCount(), before + 40)
        client.shutdownAndWait()   // returns only once serve() has returned
        XCTAssertEqual(openFDCount(), before, "every host FD the connection held is closed")
    }
}
