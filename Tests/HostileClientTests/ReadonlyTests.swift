import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `serve --readonly`: every mutation is EROFS, and nothing the client is
/// given (donated FDs included) can write to the tree.
final class ReadonlyTests: HostileTestCase {
    func testEveryMutationIsRefused() throws {
        let root = try startAndMount(extraArguments: ["--readonly"])
        let file = try walkOne(root, "file").controlFD
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: sandbox.served)) ?? [])
        let name = [UInt8]("new")
        let cases: [(String, MID, [UInt8])] = [
            ("SetStat", .setStat, SetStatReq(fd: file, mask: StatxMask.size, size: 0).encoded()),
            ("OpenCreateAt", .openCreateAt, OpenCreateAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o644, flags: 2, name: name).encoded()),
            ("MkdirAt", .mkdirAt, MkdirAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, name: name).encoded()),
            ("MknodAt", .mknodAt, MknodAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o100644, minor: 0, major: 0, name: name).encoded()),
            ("SymlinkAt", .symlinkAt, SymlinkAtReq(dirFD: root, uid: 0, gid: 0, name: name, target: [UInt8]("file")).encoded()),
            ("LinkAt", .linkAt, LinkAtReq(dirFD: root, target: file, name: name).encoded()),
            ("UnlinkAt", .unlinkAt, UnlinkAtReq(dirFD: root, flags: 0, name: [UInt8]("file")).encoded()),
            ("RenameAt", .renameAt, RenameAtReq(oldDir: root, newDir: root, oldName: [UInt8]("file"), newName: name).encoded()),
            ("FSetXattr", .fSetXattr, FSetXattrReq(fd: file, flags: 0, name: [UInt8]("user.x"), value: [1]).encoded()),
            ("FRemoveXattr", .fRemoveXattr, FRemoveXattrReq(fd: file, name: [UInt8]("user.x")).encoded()),
            ("BindAt", .bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: name).encoded()),
            ("OpenAt O_RDWR", .openAt, OpenAtReq(fd: file, flags: UInt32(O_RDWR)).encoded()),
            ("OpenAt O_WRONLY", .openAt, OpenAtReq(fd: file, flags: UInt32(O_WRONLY)).encoded()),
            ("OpenAt O_TRUNC", .openAt, OpenAtReq(fd: file, flags: UInt32(O_RDONLY | O_TRUNC)).encoded()),
        ]
        for (label, mid, payload) in cases {
            assertError(client.call(mid: mid.rawValue, payload: payload), [EROFS], "\(label) on a readonly mount")
        }
        // The read-only open FD, and the host FD donated with it.
        let reply = openAt(file, flags: O_RDONLY, keepFDs: true)
        let open = try XCTUnwrap(decode(reply, OpenAtResp.self, .openAt)).openFD
        for donated in reply.fds {
            XCTAssertEqual(fcntl(donated, F_GETFL) & O_ACCMODE, O_RDONLY, "donated FD is writable")
            XCTAssertEqual(Glibc.write(donated, "pwned", 5), -1, "wrote through the donated FD")
            XCTAssertEqual(ftruncate(donated, 0), -1, "truncated through the donated FD")
            Glibc.close(donated)
        }
        assertError(client.call(.pWrite, PWriteReq(offset: 0, fd: open, buf: [UInt8]("pwned"))), [EROFS, EBADF], "PWrite")
        assertError(client.call(.fAllocate, FAllocateReq(fd: open, mode: 0, offset: 0, length: 1 << 20)), [EROFS, EBADF], "FAllocate")
        XCTAssertEqual(sandbox.readServed("file"), Sandbox.servedFileContents)
        XCTAssertEqual(Set((try? FileManager.default.contentsOfDirectory(atPath: sandbox.served)) ?? []), before)
        // Reads still work.
        XCTAssertEqual(decode(client.call(.pRead, PReadReq(offset: 0, fd: open, count: 100)), PReadResp.self, .pRead)
            .map { String(decoding: $0.buf, as: UTF8.self) }, Sandbox.servedFileContents)
    }
}
