import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// FDIDs the client was never given, FDIDs of the wrong kind, double close,
/// use after close.
final class FDIDTests: HostileTestCase {
    /// Every request that names an FD, built around `id` (and `other` where
    /// a request names two).
    private func requestsNaming(_ id: FDID, other: FDID) -> [(String, MID, [UInt8])] {
        let name = [UInt8]("x")
        return [
            ("FStat", .fStat, StatReq(fd: id).encoded()),
            ("SetStat", .setStat, SetStatReq(fd: id, mask: StatxMask.mode, mode: 0o644).encoded()),
            ("Walk", .walk, WalkReq(dirFD: id, path: ["file"]).encoded()),
            ("WalkStat", .walkStat, WalkReq(dirFD: id, path: [""]).encoded()),
            ("OpenAt", .openAt, OpenAtReq(fd: id, flags: 0).encoded()),
            ("OpenCreateAt", .openCreateAt, OpenCreateAtReq(dirFD: id, uid: 0, gid: 0, mode: 0o644, flags: 2, name: name).encoded()),
            ("FSync", .fSync, FsyncReq(fds: [id]).encoded()),
            ("PWrite", .pWrite, PWriteReq(offset: 0, fd: id, buf: [1, 2, 3]).encoded()),
            ("PRead", .pRead, PReadReq(offset: 0, fd: id, count: 16).encoded()),
            ("MkdirAt", .mkdirAt, MkdirAtReq(dirFD: id, uid: 0, gid: 0, mode: 0o755, name: name).encoded()),
            ("MknodAt", .mknodAt, MknodAtReq(dirFD: id, uid: 0, gid: 0, mode: 0o100644, minor: 0, major: 0, name: name).encoded()),
            ("SymlinkAt", .symlinkAt, SymlinkAtReq(dirFD: id, uid: 0, gid: 0, name: name, target: [UInt8]("t")).encoded()),
            ("LinkAt dir", .linkAt, LinkAtReq(dirFD: id, target: other, name: name).encoded()),
            ("LinkAt target", .linkAt, LinkAtReq(dirFD: other, target: id, name: name).encoded()),
            ("FStatFS", .fStatFS, FStatFSReq(fd: id).encoded()),
            ("FAllocate", .fAllocate, FAllocateReq(fd: id, mode: 0, offset: 0, length: 10).encoded()),
            ("ReadLinkAt", .readLinkAt, ReadLinkAtReq(fd: id).encoded()),
            ("Flush", .flush, FlushReq(fd: id).encoded()),
            ("Connect", .connect, ConnectReq(fd: id, sockType: 1).encoded()),
            ("UnlinkAt", .unlinkAt, UnlinkAtReq(dirFD: id, flags: 0, name: name).encoded()),
            ("RenameAt old", .renameAt, RenameAtReq(oldDir: id, newDir: other, oldName: name, newName: [UInt8]("y")).encoded()),
            ("RenameAt new", .renameAt, RenameAtReq(oldDir: other, newDir: id, oldName: [UInt8]("file"), newName: name).encoded()),
            ("Getdents64", .getdents64, Getdents64Req(dirFD: id, count: 4096).encoded()),
            ("FGetXattr", .fGetXattr, FGetXattrReq(fd: id, bufSize: 100, name: [UInt8]("user.x")).encoded()),
            ("FSetXattr", .fSetXattr, FSetXattrReq(fd: id, flags: 0, name: [UInt8]("user.x"), value: [1]).encoded()),
            ("FListXattr", .fListXattr, FListXattrReq(fd: id, size: 100).encoded()),
            ("FRemoveXattr", .fRemoveXattr, FRemoveXattrReq(fd: id, name: [UInt8]("user.x")).encoded()),
            ("BindAt", .bindAt, BindAtReq(dirFD: id, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: name).encoded()),
            ("Listen", .listen, ListenReq(fd: id, backlog: 5).encoded()),
            ("Accept", .accept, AcceptReq(fd: id).encoded()),
        ]
    }

    func testFDIDsNeverIssued() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        for id: FDID in [0, root + 1, root + 1000, 1 << 32, .max] {
            for (label, mid, payload) in requestsNaming(id, other: root) {
                assertError(client.call(mid: mid.rawValue, payload: payload), [EBADF], "\(label) on unissued FDID \(id)")
            }
        }
        assertStillServing()
        assertHostFDs(back: baseline, "unissued FDIDs")
        XCTAssertEqual(sandbox.lstatServed("x") == nil, true, "something was created")
    }

    func testOpenFDWhereControlFDIsNeeded() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        let file = try walkOne(root, "file").controlFD
        let fileOpen = try XCTUnwrap(decode(openAt(file, flags: O_RDWR), OpenAtResp.self, .openAt)).openFD
        let rootOpen = try XCTUnwrap(decode(openAt(root, flags: O_RDONLY), OpenAtResp.self, .openAt)).openFD
        let name = [UInt8]("x")
        for open in [fileOpen, rootOpen] {
            let cases: [(String, MID, [UInt8])] = [
                ("Walk", .walk, WalkReq(dirFD: open, path: ["file"]).encoded()),
                ("WalkStat", .walkStat, WalkReq(dirFD: open, path: ["file"]).encoded()),
                ("OpenAt", .openAt, OpenAtReq(fd: open, flags: 0).encoded()),
                ("OpenCreateAt", .openCreateAt, OpenCreateAtReq(dirFD: open, uid: 0, gid: 0, mode: 0o644, flags: 0, name: name).encoded()),
                ("MkdirAt", .mkdirAt, MkdirAtReq(dirFD: open, uid: 0, gid: 0, mode: 0o755, name: name).encoded()),
                ("SymlinkAt", .symlinkAt, SymlinkAtReq(dirFD: open, uid: 0, gid: 0, name: name, target: [UInt8]("t")).encoded()),
                ("LinkAt target", .linkAt, LinkAtReq(dirFD: root, target: open, name: name).encoded()),
                ("UnlinkAt", .unlinkAt, UnlinkAtReq(dirFD: open, flags: 0, name: [UInt8]("file")).encoded()),
                ("RenameAt", .renameAt, RenameAtReq(oldDir: open, newDir: root, oldName: [UInt8]("file"), newName: name).encoded()),
                ("SetStat", .setStat, SetStatReq(fd: open, mask: StatxMask.size, size: 0).encoded()),
                ("ReadLinkAt", .readLinkAt, ReadLinkAtReq(fd: open).encoded()),
                ("FStatFS", .fStatFS, FStatFSReq(fd: open).encoded()),
                ("FSetXattr", .fSetXattr, FSetXattrReq(fd: open, flags: 0, name: [UInt8]("user.x"), value: [1]).encoded()),
                ("Connect", .connect, ConnectReq(fd: open, sockType: 1).encoded()),
                ("BindAt", .bindAt, BindAtReq(dirFD: open, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: name).encoded()),
                ("Listen", .listen, ListenReq(fd: open, backlog: 1).encoded()),
                ("Accept", .accept, AcceptReq(fd: open).encoded()),
            ]
            for (label, mid, payload) in cases {
                assertError(client.call(mid: mid.rawValue, payload: payload), [EINVAL], "\(label) on open FD \(open)")
            }
        }
        XCTAssertEqual(sandbox.readServed("file"), Sandbox.servedFileContents, "file truncated through an open FD")
        close([file, fileOpen, rootOpen])
        assertHostFDs(back: baseline, "wrong-kind open FDs")
    }

    func testControlFDWhereOpenFDIsNeeded() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        let file = try walkOne(root, "file").controlFD
        for control in [root, file] {
            let cases: [(String, MID, [UInt8])] = [
                ("PRead", .pRead, PReadReq(offset: 0, fd: control, count: 16).encoded()),
                ("PWrite", .pWrite, PWriteReq(offset: 0, fd: control, buf: [UInt8]("pwned")).encoded()),
                ("FSync", .fSync, FsyncReq(fds: [control]).encoded()),
                ("Flush", .flush, FlushReq(fd: control).encoded()),
                ("FAllocate", .fAllocate, FAllocateReq(fd: control, mode: 0, offset: 0, length: 1 << 20).encoded()),
                ("Getdents64", .getdents64, Getdents64Req(dirFD: control, count: 4096).encoded()),
                ("Listen", .listen, ListenReq(fd: control, backlog: 1).encoded()),
                ("Accept", .accept, AcceptReq(fd: control).encoded()),
            ]
            for (label, mid, payload) in cases {
                assertError(client.call(mid: mid.rawValue, payload: payload), [EINVAL], "\(label) on control FD \(control)")
            }
        }
        // A file's control FD used as a directory.
        assertError(client.call(.walk, WalkReq(dirFD: file, path: ["x"])), [ENOTDIR, EINVAL], "Walk from a file")
        assertError(client.call(.mkdirAt, MkdirAtReq(dirFD: file, uid: 0, gid: 0, mode: 0o755, name: [UInt8]("x"))),
                    [ENOTDIR, EINVAL], "MkdirAt in a file")
        assertError(client.call(.openCreateAt, OpenCreateAtReq(dirFD: file, uid: 0, gid: 0, mode: 0o644, flags: 2, name: [UInt8]("x"))),
                    [ENOTDIR, EINVAL], "OpenCreateAt in a file")
        XCTAssertEqual(sandbox.readServed("file"), Sandbox.servedFileContents)
        close([file])
        assertHostFDs(back: baseline, "wrong-kind control FDs")
    }

    func testDoubleCloseAndUseAfterClose() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        let file = try walkOne(root, "file").controlFD
        let open = try XCTUnwrap(decode(openAt(file, flags: O_RDONLY), OpenAtResp.self, .openAt)).openFD
        close([open])
        close([open])
        close([open, open, open])
        assertError(client.call(.pRead, PReadReq(offset: 0, fd: open, count: 4)), [EBADF], "PRead after close")
        assertError(fstat(open), [EBADF], "FStat after close")
        close([file, file])
        assertError(fstat(file), [EBADF], "FStat on closed control FD")
        assertError(openAt(file, flags: O_RDONLY), [EBADF], "OpenAt on closed control FD")
        assertError(client.call(.linkAt, LinkAtReq(dirFD: root, target: file, name: [UInt8]("x"))), [EBADF], "LinkAt of closed FD")
        assertHostFDs(back: baseline, "double close")

        // Closing the root, then everything that used it.
        close([root])
        assertError(client.call(.walk, WalkReq(dirFD: root, path: ["file"])), [EBADF], "Walk from closed root")
        let again = try mount().root.controlFD
        XCTAssertGreaterThan(again, open, "FDIDs must not be reused within a connection")
        XCTAssertNotNil(walk(again, ["file"]))
    }

    func testOpenFDOutlivesItsControlFD() throws {
        try startGofer()
        let baseline = hostFDCount("before Mount")
        let root = try mount().root.controlFD
        let dir = try walkOne(root, "dir").controlFD
        let inner = try walkOne(dir, "inner").controlFD
        let open = try XCTUnwrap(decode(openAt(inner, flags: O_RDONLY), OpenAtResp.self, .openAt)).openFD
        close([inner, dir, root])
        let read = decode(client.call(.pRead, PReadReq(offset: 0, fd: open, count: 100)), PReadResp.self, .pRead)
        XCTAssertEqual(read.map { String(decoding: $0.buf, as: UTF8.self) }, "inner\n")
        XCTAssertNotNil(decode(fstat(open), Statx.self, .fStat))
        close([open])
        assertHostFDs(back: baseline, "open FD outliving its control FD (all closed)")
    }

    func testCloseWithManyAndRepeatedIDs() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        var ids: [FDID] = []
        for _ in 0..<50 { ids.append(try walkOne(root, "file").controlFD) }
        // 65535 IDs, mostly unknown, each issued one three times.
        var closeIDs: [FDID] = ids + ids + ids
        closeIDs += (0..<(65_535 - closeIDs.count)).map { FDID($0) << 20 }
        close(closeIDs)
        XCTAssertEqual(fstat(root).mid, MID.fStat.rawValue, "root FD closed by an unrelated FDID")
        assertHostFDs(back: baseline, "Close with repeats")
    }
}
