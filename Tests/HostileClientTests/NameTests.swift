import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Path components with '/', '..', '.', empty, NUL, over-long: every request
/// that takes a name must refuse them (EINVAL / ENAMETOOLONG) and create
/// nothing; 255 bytes must work, 256 must not.
final class NameTests: HostileTestCase {
    private var servedListing: Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: sandbox.served)) ?? [])
    }

    /// Every name-taking request with `name` in the slot under test.
    private func requests(root: FDID, file: FDID, name: [UInt8]) -> [(String, MID, [UInt8])] {
        [
            ("Walk", .walk, WalkReq(dirFD: root, path: [name]).encoded()),
            ("Walk dir/<name>", .walk, WalkReq(dirFD: root, path: [[UInt8]("dir"), name]).encoded()),
            ("WalkStat", .walkStat, WalkReq(dirFD: root, path: [[UInt8]("dir"), name]).encoded()),
            ("OpenCreateAt", .openCreateAt,
             OpenCreateAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o644, flags: UInt32(O_RDWR), name: name).encoded()),
            ("MkdirAt", .mkdirAt, MkdirAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, name: name).encoded()),
            ("MknodAt", .mknodAt, MknodAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o100644, minor: 0, major: 0, name: name).encoded()),
            ("SymlinkAt", .symlinkAt, SymlinkAtReq(dirFD: root, uid: 0, gid: 0, name: name, target: [UInt8]("file")).encoded()),
            ("LinkAt", .linkAt, LinkAtReq(dirFD: root, target: file, name: name).encoded()),
            ("RenameAt new", .renameAt, RenameAtReq(oldDir: root, newDir: root, oldName: [UInt8]("file"), newName: name).encoded()),
            ("RenameAt old", .renameAt, RenameAtReq(oldDir: root, newDir: root, oldName: name, newName: [UInt8]("renamed")).encoded()),
            ("RenameAt2 new", .renameAt2,
             RenameAt2Req(oldDir: root, newDir: root, oldName: [UInt8]("file"), newName: name, flags: 0).encoded()),
            ("UnlinkAt", .unlinkAt, UnlinkAtReq(dirFD: root, flags: 0, name: name).encoded()),
            ("UnlinkAt rmdir", .unlinkAt, UnlinkAtReq(dirFD: root, flags: 0x200, name: name).encoded()),
            ("BindAt", .bindAt, BindAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, sockType: 1, name: name).encoded()),
        ]
    }

    func testInvalidNamesAreRefusedEverywhere() throws {
        let root = try startAndMount()
        let file = try walkOne(root, "file").controlFD
        let baseline = hostFDCount("after Mount and one Walk")
        let before = servedListing
        for (label, name, errnos) in HostileNames.invalid {
            for (request, mid, payload) in requests(root: root, file: file, name: name) {
                let reply = client.call(mid: mid.rawValue, payload: payload)
                if mid == .renameAt2 && reply.errno == EOPNOTSUPP { continue }  // MID 33 optional
                assertError(reply, errnos, "\(request) with \(label) name")
            }
        }
        XCTAssertEqual(servedListing, before, "a refused name still changed the served directory")
        XCTAssertEqual(sandbox.readServed("file"), Sandbox.servedFileContents)
        assertStillServing()
        assertHostFDs(back: baseline, "invalid names")
    }

    func testWalkStatEmptyNameOnlyFirst() throws {
        let root = try startAndMount()
        // A leading "" means "include the start"; anywhere else it is invalid.
        let ok = decode(client.call(.walkStat, WalkReq(dirFD: root, path: ["", "file"])), WalkStatResp.self, .walkStat)
        XCTAssertEqual(ok?.stats.count, 2)
        assertError(client.call(.walkStat, WalkReq(dirFD: root, path: ["", ""])), [EINVAL], "WalkStat ['', '']")
        assertError(client.call(.walkStat, WalkReq(dirFD: root, path: ["dir", "", "inner"])), [EINVAL], "WalkStat [dir, '', inner]")
        assertError(client.call(.walkStat, WalkReq(dirFD: root, path: ["", ".."])), [EINVAL], "WalkStat ['', '..']")
        assertError(client.call(.walk, WalkReq(dirFD: root, path: [""])), [EINVAL], "Walk ['']")
    }

    func testWalkDoesNotLeakFDsOfAPartlyValidPath() throws {
        let root = try startAndMount()
        let baseline = hostFDCount("after Mount")
        for bad in HostileNames.invalid {
            // Good components first, so the server has FDs to undo.
            let reply = client.call(.walk, WalkReq(dirFD: root, path: [[UInt8]("dir"), bad.1]))
            assertError(reply, bad.2, "Walk [dir, \(bad.0)]")
            let deeper = client.call(.walk, WalkReq(dirFD: root, path: [[UInt8]("dir"), [UInt8]("inner"), bad.1]))
            // Past a file the walk may fail with ENOTDIR instead; never succeed.
            assertError(deeper, bad.2.union([ENOTDIR]), "Walk [dir, inner, \(bad.0)]")
        }
        assertHostFDs(back: baseline, "walks with a bad last component")
    }

    func testName255WorksAnd256DoesNot() throws {
        let root = try startAndMount()
        let file = try walkOne(root, "file").controlFD
        let baseline = hostFDCount("after Mount and one Walk")
        let n255 = [UInt8](repeating: UInt8(ascii: "f"), count: 255)
        let d255 = [UInt8](repeating: UInt8(ascii: "d"), count: 255)
        let s255 = [UInt8](repeating: UInt8(ascii: "s"), count: 255)
        let l255 = [UInt8](repeating: UInt8(ascii: "l"), count: 255)
        var issued: [FDID] = []

        let created = decode(client.call(.openCreateAt, OpenCreateAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o644,
                                                                         flags: UInt32(O_RDWR), name: n255)),
                             OpenCreateAtResp.self, .openCreateAt)
        if let created { issued += [created.child.controlFD, created.newFD] }
        if let dir = decode(client.call(.mkdirAt, MkdirAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o755, name: d255)),
                            MkdirAtResp.self, .mkdirAt) { issued.append(dir.childDir.controlFD) }
        if let link = decode(client.call(.symlinkAt, SymlinkAtReq(dirFD: root, uid: 0, gid: 0, name: s255, target: [UInt8]("file"))),
                             SymlinkAtResp.self, .symlinkAt) { issued.append(link.symlink.controlFD) }
        if let hard = decode(client.call(.linkAt, LinkAtReq(dirFD: root, target: file, name: l255)), LinkAtResp.self, .linkAt) {
            issued.append(hard.link.controlFD)
        }
        for name in [n255, d255, s255, l255] {
            XCTAssertNotNil(sandbox.lstatServed(String(decoding: name, as: UTF8.self)), "255-byte \(name[0]) name missing on host")
            if let w = walk(root, [name]) {
                XCTAssertEqual(w.inodes.count, 1)
                issued += w.inodes.map(\.controlFD)
            }
        }
        let renamed = [UInt8](repeating: UInt8(ascii: "r"), count: 255)
        XCTAssertEqual(client.call(.renameAt, RenameAtReq(oldDir: root, newDir: root, oldName: n255, newName: renamed)).mid,
                       MID.renameAt.rawValue, "rename to a 255-byte name")

        // 256 bytes: everywhere ENAMETOOLONG.
        let n256 = [UInt8](repeating: UInt8(ascii: "g"), count: 256)
        for (label, mid, payload) in requests(root: root, file: file, name: n256) {
            let reply = client.call(mid: mid.rawValue, payload: payload)
            if mid == .renameAt2 && reply.errno == EOPNOTSUPP { continue }
            assertError(reply, [ENAMETOOLONG], "\(label) with a 256-byte name")
        }

        for (name, flags) in [(renamed, 0), (d255, 0x200), (s255, 0), (l255, 0)] as [([UInt8], UInt32)] {
            XCTAssertEqual(client.call(.unlinkAt, UnlinkAtReq(dirFD: root, flags: flags, name: name)).mid,
                           MID.unlinkAt.rawValue, "unlink 255-byte \(name[0])")
        }
        close(issued)
        XCTAssertEqual(servedListing, ["file", "dir", "to-root", "to-sentinel", "to-secret", "dangling-in-sentinel", "dangling-abs"])
        assertHostFDs(back: baseline, "255/256-byte names")
    }

    func testSymlinkTargetLimits() throws {
        let root = try startAndMount()
        func symlink(_ name: String, _ target: [UInt8]) -> Reply {
            client.call(.symlinkAt, SymlinkAtReq(dirFD: root, uid: 0, gid: 0, name: [UInt8](name), target: target))
        }
        assertError(symlink("t-empty", []), [ENOENT, EINVAL], "empty target")
        assertError(symlink("t-nul", [UInt8]("../sentinel") + [0] + [UInt8]("x")), [EINVAL], "target with NUL")
        assertError(symlink("t-4096", [UInt8](repeating: 0x61, count: 4096)), [ENAMETOOLONG], "4096-byte target")
        assertError(symlink("t-65535", [UInt8](repeating: 0x61, count: 65_535)), [ENAMETOOLONG], "65535-byte target")
        let long = symlink("t-4095", [UInt8](repeating: 0x61, count: 4095))
        XCTAssertEqual(long.mid, MID.symlinkAt.rawValue, "4095-byte target: \(long)")
        if let link = try? SymlinkAtResp.decode(long.payload ?? []) {
            let read = decode(client.call(.readLinkAt, ReadLinkAtReq(fd: link.symlink.controlFD)), ReadLinkAtResp.self, .readLinkAt)
            XCTAssertEqual(read?.target.count, 4095)
        }
        for name in ["t-empty", "t-nul", "t-4096", "t-65535"] {
            XCTAssertNil(sandbox.lstatServed(name), "\(name) was created")
        }
    }

    func testMknodRefusesDevicesAndSockets() throws {
        let root = try startAndMount()
        let kinds: [(String, UInt16, UInt32, UInt32)] = [
            ("block device of the host disk", UInt16(S_IFBLK) | 0o666, 8, 0),
            ("character device /dev/mem", UInt16(S_IFCHR) | 0o666, 1, 1),
            ("character device /dev/null", UInt16(S_IFCHR) | 0o666, 1, 3),
            ("socket", UInt16(S_IFSOCK) | 0o666, 0, 0),
            ("directory", UInt16(S_IFDIR) | 0o755, 0, 0),
            ("symlink", UInt16(S_IFLNK) | 0o777, 0, 0),
            ("garbage type", 0o170777, 0xFFFF_FFFF, 0xFFFF_FFFF),
        ]
        for (label, mode, major, minor) in kinds {
            let name = "node-\(label.prefix(5))"
            let reply = client.call(.mknodAt, MknodAtReq(dirFD: root, uid: 0, gid: 0, mode: mode, minor: minor,
                                                         major: major, name: [UInt8](name)))
            assertError(reply, [EPERM, EINVAL], "MknodAt \(label)")
            if let st = sandbox.lstatServed(name) {
                XCTFail("MknodAt \(label) created a node of mode \(String(st.st_mode, radix: 8))")
            }
        }
    }

    func testNonUTF8AndOddBytesRoundTripExactly() throws {
        let root = try startAndMount()
        let names: [[UInt8]] = [[0xFF, 0xFE], [0xC0, 0xAF], [0x2E, 0x2E, 0x2E], [0x2E, 0x20], [0x0A], [0x5C, 0x2E, 0x2E],
                                [0xE2, 0x80, 0xAE, 0x74, 0x78, 0x74], [0x2D, 0x2D, 0x2F].dropLast() + [0x01]]
        let rootOpen = try XCTUnwrap(decode(openAt(root, flags: O_RDONLY), OpenAtResp.self, .openAt)).openFD
        var issued: [FDID] = [rootOpen]
        for name in names {
            let made = decode(client.call(.openCreateAt, OpenCreateAtReq(dirFD: root, uid: 0, gid: 0, mode: 0o644, flags: 2, name: name)),
                              OpenCreateAtResp.self, .openCreateAt)
            if let made { issued += [made.child.controlFD, made.newFD] }
            var st = stat()
            let onHost = (sandbox.served + "/").utf8CString.dropLast().map { UInt8(bitPattern: $0) } + name + [0]
            let exists = onHost.withUnsafeBufferPointer { buf in
                buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { lstat($0, &st) == 0 }
            }
            XCTAssertTrue(exists, "name \(name) not created byte-exact on the host")
            let w = walk(root, [name])
            XCTAssertEqual(w?.status, .success, "walk \(name)")
            issued += w?.inodes.map(\.controlFD) ?? []
        }
        let listing = decode(client.call(.getdents64, Getdents64Req(dirFD: rootOpen, count: -65536)), Getdents64Resp.self, .getdents64)
        let listed = Set(listing?.dirents.map(\.name) ?? [])
        for name in names { XCTAssertTrue(listed.contains(name), "Getdents64 lost or mangled \(name)") }
        for name in names {
            XCTAssertEqual(client.call(.unlinkAt, UnlinkAtReq(dirFD: root, flags: 0, name: name)).mid, MID.unlinkAt.rawValue)
        }
        close(issued)
    }
}
