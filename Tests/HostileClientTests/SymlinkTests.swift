import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Symlinks inside the tree pointing at / and at the sentinel: walking
/// through them, opening them, creating, renaming and linking through or
/// onto them, and directories moved (or replaced by escaping symlinks) while
/// FDs on their children are open. tearDown verifies the sentinel.
final class SymlinkTests: HostileTestCase {
    private func mode(_ inode: Inode) -> UInt32 { UInt32(inode.stat.mode) & UInt32(S_IFMT) }

    func testWalkStopsAtEverySymlink() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        let paths: [[String]] = [
            ["to-root", "etc", "passwd"], ["to-root"], ["to-sentinel", "secret"], ["to-sentinel", "sub", "deep"],
            ["to-secret"], ["dangling-abs"], ["dangling-in-sentinel", "x"],
        ]
        for path in paths {
            guard let resp = walk(root, path) else { continue }
            let link = sandbox.lstatServed(path[0])
            if path.count > 1 {
                XCTAssertEqual(resp.status, .componentSymlink, "\(path): walked through a symlink")
            }
            XCTAssertEqual(resp.inodes.count, 1, "\(path): \(resp.inodes.count) inodes")
            if let first = resp.inodes.first {
                XCTAssertEqual(mode(first), UInt32(S_IFLNK), "\(path): first inode is not the symlink itself")
                XCTAssertEqual(first.stat.ino, UInt64(link?.st_ino ?? 0), "\(path): inode is not the link in the tree")
            }
            close(resp.inodes.map(\.controlFD))

            let stats = decode(client.call(.walkStat, WalkReq(dirFD: root, path: path)), WalkStatResp.self, .walkStat)
            XCTAssertEqual(stats?.stats.count, 1, "WalkStat \(path) went past the symlink")
            XCTAssertEqual(stats?.stats.first.map { UInt32($0.mode) & UInt32(S_IFMT) }, UInt32(S_IFLNK))
        }
        assertHostFDs(back: baseline, "walks through symlinks")
    }

    func testSymlinkControlFDCannotBeOpenedOrUsedAsDirectory() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        let secretLink = try walkOne(root, "to-secret").controlFD
        let dirLink = try walkOne(root, "to-sentinel").controlFD
        let rootLink = try walkOne(root, "to-root").controlFD
        for link in [secretLink, dirLink, rootLink] {
            for flags in [O_RDONLY, O_RDWR, O_WRONLY | O_TRUNC, O_RDONLY | O_NOFOLLOW, 0o10000000 /* O_PATH */, O_RDONLY | O_DIRECTORY] {
                let reply = openAt(link, flags: flags)
                assertError(reply, [EINVAL, ELOOP, EPERM], "OpenAt(symlink, flags 0o\(String(flags, radix: 8)))")
            }
        }
        let escape = [UInt8](sandbox.escapeName)
        for link in [dirLink, rootLink] {
            let cases: [(String, MID, [UInt8])] = [
                ("Walk", .walk, WalkReq(dirFD: link, path: [[UInt8]("secret")]).encoded()),
                ("WalkStat", .walkStat, WalkReq(dirFD: link, path: [[UInt8]("secret")]).encoded()),
                ("OpenCreateAt", .openCreateAt,
                 OpenCreateAtReq(dirFD: link, uid: 0, gid: 0, mode: 0o644, flags: UInt32(O_RDWR), name: escape).encoded()),
                ("MkdirAt", .mkdirAt, MkdirAtReq(dirFD: link, uid: 0, gid: 0, mode: 0o755, name: escape).encoded()),
                ("MknodAt", .mknodAt, MknodAtReq(dirFD: link, uid: 0, gid: 0, mode: 0o100644, minor: 0, major: 0, name: escape).encoded()),
                ("SymlinkAt", .symlinkAt, SymlinkAtReq(dirFD: link, uid: 0, gid: 0, name: escape, target: [UInt8]("x")).encoded()),
                ("LinkAt", .linkAt, LinkAtReq(dirFD: link, target: secretLink, name: escape).encoded()),
                ("UnlinkAt", .unlinkAt, UnlinkAtReq(dirFD: link, flags: 0, name: [UInt8]("secret")).encoded()),
                ("RenameAt into", .renameAt, RenameAtReq(oldDir: root, newDir: link, oldName: [UInt8]("file"), newName: escape).encoded()),
                ("RenameAt out of", .renameAt,
                 RenameAtReq(oldDir: link, newDir: root, oldName: [UInt8]("secret"), newName: [UInt8]("stolen")).encoded()),
                ("BindAt", .bindAt, BindAtReq(dirFD: link, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: escape).encoded()),
            ]
            for (label, mid, payload) in cases {
                let reply = client.call(mid: mid.rawValue, payload: payload)
                // WalkStat from a symlink with a further component: ENOTDIR, or
                // an empty answer; never the sentinel's stat.
                if mid == .walkStat, let resp = try? WalkStatResp.decode(reply.payload ?? []) {
                    XCTAssertEqual(resp.stats.count, 0, "WalkStat through a symlink FD returned \(resp.stats.count) stats")
                    continue
                }
                assertError(reply, [ENOTDIR, EINVAL], "\(label) with a symlink as directory")
            }
        }
        XCTAssertNil(sandbox.lstatServed("stolen"))
        XCTAssertEqual(sandbox.readServed("file"), Sandbox.servedFileContents)
        close([secretLink, dirLink, rootLink])
        assertHostFDs(back: baseline, "symlink misuse")
    }

    func testCreatingOverDanglingSymlinksDoesNotFollowThem() throws {
        let root = try startAndMount()
        let file = try walkOne(root, "file").controlFD
        for link in ["dangling-in-sentinel", "dangling-abs"] {
            let name = [UInt8](link)
            assertError(client.call(.openCreateAt, OpenCreateAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o644,
                                                                   flags: UInt32(O_RDWR), name: name)),
                        [EEXIST], "OpenCreateAt over \(link)")
            assertError(client.call(.mkdirAt, MkdirAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, name: name)),
                        [EEXIST], "MkdirAt over \(link)")
            assertError(client.call(.mknodAt, MknodAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o100644, minor: 0, major: 0, name: name)),
                        [EEXIST], "MknodAt over \(link)")
            assertError(client.call(.symlinkAt, SymlinkAtReq(dirFD: root, uid: 0, gid: 0, name: name, target: [UInt8]("x"))),
                        [EEXIST], "SymlinkAt over \(link)")
            assertError(client.call(.linkAt, LinkAtReq(dirFD: root, target: file, name: name)), [EEXIST], "LinkAt over \(link)")
            assertError(client.call(.bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: name)),
                        [EEXIST, EADDRINUSE], "BindAt over \(link)")
            XCTAssertEqual(sandbox.lstatServed(link).map { $0.st_mode & S_IFMT }, S_IFLNK, "\(link) replaced")
        }
        // tearDown: nothing named escapeName in the sentinel, /tmp or /.
    }

    func testRenameOntoAndOfSymlinksStaysInside() throws {
        let root = try startAndMount()
        // Replacing the link itself is fine; following it would overwrite the secret.
        let reply = client.call(.renameAt, RenameAtReq(oldDir: root, newDir: root, oldName: [UInt8]("file"),
                                                       newName: [UInt8]("to-secret")))
        XCTAssertEqual(reply.mid, MID.renameAt.rawValue, "rename file over to-secret: \(reply)")
        XCTAssertEqual(sandbox.readServed("to-secret"), Sandbox.servedFileContents, "the link was not what got replaced")
        XCTAssertEqual(sandbox.lstatServed("to-secret").map { $0.st_mode & S_IFMT }, S_IFREG)

        // A directory over a symlink to a directory: ENOTDIR, never a merge into the sentinel.
        assertError(client.call(.renameAt, RenameAtReq(oldDir: root, newDir: root, oldName: [UInt8]("dir"),
                                                       newName: [UInt8]("to-sentinel"))),
                    [ENOTDIR, EISDIR, EEXIST], "rename dir over to-sentinel")
        // Moving a link moves the link.
        XCTAssertEqual(client.call(.renameAt, RenameAtReq(oldDir: root, newDir: root, oldName: [UInt8]("to-sentinel"),
                                                          newName: [UInt8]("moved-link"))).mid, MID.renameAt.rawValue)
        XCTAssertEqual(sandbox.lstatServed("moved-link").map { $0.st_mode & S_IFMT }, S_IFLNK)
        // RENAME_EXCHANGE of a directory with a symlink to a directory.
        let exchange = client.call(.renameAt2, RenameAt2Req(oldDir: root, newDir: root, oldName: [UInt8]("dir"),
                                                            newName: [UInt8]("to-root"), flags: 2))
        if exchange.errno != EOPNOTSUPP {
            XCTAssertEqual(exchange.mid, MID.renameAt2.rawValue, "RENAME_EXCHANGE dir <-> to-root: \(exchange)")
            XCTAssertEqual(sandbox.lstatServed("dir").map { $0.st_mode & S_IFMT }, S_IFLNK)
            XCTAssertEqual(sandbox.readServed("to-root/inner"), "inner\n")
        }
    }

    func testHardLinkToSymlinkLinksTheLinkNotTheSecret() throws {
        let root = try startAndMount()
        let secretLink = try walkOne(root, "to-secret").controlFD
        let reply = client.call(.linkAt, LinkAtReq(dirFD: root, target: secretLink, name: [UInt8]("hard")))
        if reply.errno == nil {
            let link = decode(reply, LinkAtResp.self, .linkAt)
            XCTAssertEqual(link.map { mode($0.link) }, UInt32(S_IFLNK), "LinkAt of a symlink produced a non-symlink")
            XCTAssertEqual(sandbox.lstatServed("hard").map { $0.st_mode & S_IFMT }, S_IFLNK)
        }
        // A hard link to a directory is never allowed.
        let dir = try walkOne(root, "dir").controlFD
        assertError(client.call(.linkAt, LinkAtReq(dirFD: root, target: dir, name: [UInt8]("dirlink"))), [EPERM], "LinkAt of a directory")
        // tearDown: sentinel/secret nlink and ctime unchanged.
    }

    func testAttributeChangesOnSymlinksDoNotReachTheTarget() throws {
        let root = try startAndMount()
        let secretLink = try walkOne(root, "to-secret").controlFD
        let changes: [(String, SetStatReq)] = [
            ("truncate", SetStatReq(fd: secretLink, mask: StatxMask.size, size: 0)),
            ("chmod 777", SetStatReq(fd: secretLink, mask: StatxMask.mode, mode: 0o777)),
            ("chown", SetStatReq(fd: secretLink, mask: StatxMask.uid | StatxMask.gid, uid: 1234, gid: 1234)),
            ("utimes", SetStatReq(fd: secretLink, mask: StatxMask.atime | StatxMask.mtime,
                                  atime: Timespec(sec: 1, nsec: 0), mtime: Timespec(sec: 2, nsec: 0))),
        ]
        for (label, request) in changes {
            let reply = client.call(.setStat, request)
            XCTAssertTrue(reply.errno != nil || reply.mid == MID.setStat.rawValue, "SetStat \(label) on a symlink: \(reply)")
        }
        let get = client.call(.fGetXattr, FGetXattrReq(fd: secretLink, bufSize: 100, name: [UInt8]("user.sentinel")))
        if let value = try? FGetXattrResp.decode(get.payload ?? []), get.mid == MID.fGetXattr.rawValue {
            XCTAssertNotEqual(String(decoding: value.value, as: UTF8.self), "untouched", "FGetXattr read the sentinel through a symlink")
        }
        let list = client.call(.fListXattr, FListXattrReq(fd: secretLink, size: 4096))
        if let names = try? FListXattrResp.decode(list.payload ?? []), list.mid == MID.fListXattr.rawValue {
            XCTAssertFalse(names.xattrStrings.contains("user.sentinel"), "FListXattr listed the sentinel's xattrs")
        }
        _ = client.call(.fSetXattr, FSetXattrReq(fd: secretLink, flags: 0, name: [UInt8]("user.pwned"), value: [UInt8]("1")))
        _ = client.call(.fRemoveXattr, FRemoveXattrReq(fd: secretLink, name: [UInt8]("user.sentinel")))
        let statfs = client.call(.fStatFS, FStatFSReq(fd: secretLink))
        XCTAssertTrue(statfs.errno != nil || statfs.mid == MID.fStatFS.rawValue, "FStatFS on a symlink: \(statfs)")
        // tearDown: sentinel/secret size, mode, owner, times, xattrs unchanged.
    }

    func testClientMadeEscapeSymlinks() throws {
        let root = try startAndMount()
        let targets = ["/", "/etc/passwd", "../sentinel/secret", "../../../../../../../etc", "/tmp/" + sandbox.escapeName]
        for (i, target) in targets.enumerated() {
            let name = "evil\(i)"
            guard let made = decode(client.call(.symlinkAt, SymlinkAtReq(dirFD: root, uid: 0, gid: 0, name: [UInt8](name),
                                                                          target: [UInt8](target))),
                                    SymlinkAtResp.self, .symlinkAt) else { continue }
            let read = decode(client.call(.readLinkAt, ReadLinkAtReq(fd: made.symlink.controlFD)), ReadLinkAtResp.self, .readLinkAt)
            XCTAssertEqual(read?.targetString, target)
            assertError(openAt(made.symlink.controlFD, flags: O_RDONLY), [EINVAL, ELOOP], "OpenAt of client symlink to \(target)")
            let through = walk(root, [name, "x"])
            XCTAssertEqual(through?.status, .componentSymlink)
            XCTAssertEqual(through?.inodes.count, 1)
            assertError(client.call(.openCreateAt, OpenCreateAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o644,
                                                                   flags: UInt32(O_RDWR), name: [UInt8](name))),
                        [EEXIST], "OpenCreateAt over client symlink to \(target)")
        }
    }

    func testDirectoryRenamedAndReplacedBySymlinkUnderOpenFDs() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        let d1 = try XCTUnwrap(decode(client.call(.mkdirAt, MkdirAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, name: [UInt8]("d1"))),
                                      MkdirAtResp.self, .mkdirAt)).childDir.controlFD
        let sub = try XCTUnwrap(decode(client.call(.mkdirAt, MkdirAtReq(dirFD: d1, uid: 0, gid: 0, mode: 0o755, name: [UInt8]("sub"))),
                                       MkdirAtResp.self, .mkdirAt)).childDir.controlFD
        let created = try XCTUnwrap(decode(client.call(.openCreateAt, OpenCreateAtReq(dirFD: sub, uid: 0, gid: 0, mode: 0o644,
                                                                                      flags: UInt32(O_RDWR), name: [UInt8]("f"))),
                                           OpenCreateAtResp.self, .openCreateAt))
        // Move d1 away and put an escaping symlink where it was.
        XCTAssertEqual(client.call(.renameAt, RenameAtReq(oldDir: root, newDir: root, oldName: [UInt8]("d1"),
                                                          newName: [UInt8]("d2"))).mid, MID.renameAt.rawValue)
        let link = try XCTUnwrap(decode(client.call(.symlinkAt, SymlinkAtReq(dirFD: root, uid: 0, gid: 0, name: [UInt8]("d1"),
                                                                              target: [UInt8]("../sentinel"))),
                                        SymlinkAtResp.self, .symlinkAt))
        // Everything done through the old FDs must land in d2, not the sentinel.
        let escape = [UInt8](sandbox.escapeName)
        var issued: [FDID] = [d1, sub, created.child.controlFD, created.newFD, link.symlink.controlFD]
        if let m = decode(client.call(.mkdirAt, MkdirAtReq(dirFD: sub, uid: 0, gid: 0, mode: 0o755, name: escape)),
                          MkdirAtResp.self, .mkdirAt) { issued.append(m.childDir.controlFD) }
        if let c = decode(client.call(.openCreateAt, OpenCreateAtReq(dirFD: d1, uid: 0, gid: 0, mode: 0o644,
                                                                     flags: UInt32(O_RDWR), name: escape + [UInt8](".f"))),
                          OpenCreateAtResp.self, .openCreateAt) { issued += [c.child.controlFD, c.newFD] }
        let wrote = decode(client.call(.pWrite, PWriteReq(offset: 0, fd: created.newFD, buf: [UInt8]("moved\n"))), PWriteResp.self, .pWrite)
        XCTAssertEqual(wrote?.count, 6)
        XCTAssertNotNil(sandbox.lstatServed("d2/sub/" + sandbox.escapeName), "MkdirAt through the moved FD went elsewhere")
        XCTAssertNotNil(sandbox.lstatServed("d2/" + sandbox.escapeName + ".f"), "OpenCreateAt through the moved FD went elsewhere")
        XCTAssertEqual(sandbox.readServed("d2/sub/f"), "moved\n")
        if let w = walk(d1, ["sub", "f"]) {
            XCTAssertEqual(w.status, .success)
            issued += w.inodes.map(\.controlFD)
        }
        // Walking by name now meets the symlink and stops there.
        if let w = walk(root, ["d1", "secret"]) {
            XCTAssertEqual(w.status, .componentSymlink)
            issued += w.inodes.map(\.controlFD)
        }
        // Moving a directory into its own subdirectory: EINVAL, and the server's tree stays sane.
        assertError(client.call(.renameAt, RenameAtReq(oldDir: root, newDir: sub, oldName: [UInt8]("d2"), newName: [UInt8]("loop"))),
                    [EINVAL], "rename d2 into d2/sub")
        XCTAssertNotNil(walk(root, ["d2", "sub", "f"]).map { issued += $0.inodes.map(\.controlFD) })
        close(issued)
        assertHostFDs(back: baseline, "renamed directory")
    }

    func testDeletedDirectoryFDRefusesCreation() throws {
        let root = try startAndMount()
        let gone = try XCTUnwrap(decode(client.call(.mkdirAt, MkdirAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, name: [UInt8]("gone"))),
                                        MkdirAtResp.self, .mkdirAt)).childDir.controlFD
        XCTAssertEqual(client.call(.unlinkAt, UnlinkAtReq(dirFD: root, flags: 0x200, name: [UInt8]("gone"))).mid, MID.unlinkAt.rawValue)
        // Put an escaping symlink where the directory was.
        XCTAssertNotNil(decode(client.call(.symlinkAt, SymlinkAtReq(dirFD: root, uid: 0, gid: 0, name: [UInt8]("gone"),
                                                                     target: [UInt8]("../sentinel"))), SymlinkAtResp.self, .symlinkAt))
        let escape = [UInt8](sandbox.escapeName)
        assertError(client.call(.mkdirAt, MkdirAtReq(dirFD: gone, uid: 0, gid: 0, mode: 0o755, name: escape)),
                    [EINVAL, ENOENT], "MkdirAt in a deleted directory")
        assertError(client.call(.openCreateAt, OpenCreateAtReq(dirFD: gone, uid: 0, gid: 0, mode: 0o644, flags: 2, name: escape)),
                    [EINVAL, ENOENT], "OpenCreateAt in a deleted directory")
        assertError(client.call(.symlinkAt, SymlinkAtReq(dirFD: gone, uid: 0, gid: 0, name: escape, target: [UInt8]("x"))),
                    [EINVAL, ENOENT], "SymlinkAt in a deleted directory")
        let w = client.call(.walk, WalkReq(dirFD: gone, path: [[UInt8]("secret")]))
        if let resp = try? WalkResp.decode(w.payload ?? []), w.mid == MID.walk.rawValue {
            XCTAssertEqual(resp.inodes.count, 0, "walked into the sentinel from a deleted directory")
        } else {
            assertError(w, [], "Walk in a deleted directory")
        }
    }

    func testDonatedFDsGiveNoWayOut() throws {
        let root = try startAndMount()
        let file = try walkOne(root, "file").controlFD
        let dir = try walkOne(root, "dir").controlFD
        var checked = 0
        for (label, fd, flags) in [("root", root, O_RDONLY), ("dir", dir, O_RDONLY), ("file", file, O_RDONLY)] as [(String, FDID, Int32)] {
            let reply = openAt(fd, flags: flags, keepFDs: true)
            XCTAssertEqual(reply.mid, MID.openAt.rawValue, "OpenAt \(label): \(reply)")
            for donated in reply.fds {
                checked += 1
                // A donated directory FD would let the sandbox openat("..") its way out.
                let outside = openat(donated, "../sentinel/secret", O_RDONLY | O_CLOEXEC)
                if outside >= 0 {
                    Glibc.close(outside)
                    XCTFail("donated FD of \(label) reaches ../sentinel/secret")
                }
                let parent = openat(donated, "..", O_RDONLY | O_CLOEXEC | O_DIRECTORY)
                if parent >= 0 {
                    Glibc.close(parent)
                    XCTFail("donated FD of \(label) is a directory FD that can open '..'")
                }
                let accessMode = fcntl(donated, F_GETFL) & O_ACCMODE
                XCTAssertEqual(accessMode, O_RDONLY, "donated FD of \(label) opened O_RDONLY has access mode \(accessMode)")
                Glibc.close(donated)
            }
        }
        print("[donated] \(checked) donated FDs checked")
    }
}
