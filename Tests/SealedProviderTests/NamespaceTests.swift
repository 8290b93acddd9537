import CLinux
import Foundation
import Lisafs
import SealedProvider
import SealedStore
import XCTest

/// Create, mkdir, symlink, link, rename, unlink, rmdir keep file IDs and
/// sidecars consistent; meta/, the keyring and the config stay out of reach.
final class NamespaceTests: ProviderTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try start()
    }

    private func write(_ name: String, in dir: FDID? = nil, _ text: String) throws {
        let c = try client.create(dir ?? root, name)
        try client.pwrite(c.fd, Array(text.utf8), at: 0)
        if let d = c.donated { Glibc.close(d) }
        try client.close([c.fd, c.inode.controlFD])
    }

    func testRenameLinkUnlinkKeepSidecarsConsistent() throws {
        try write("a", "alpha")
        try write("b", "beta")
        XCTAssertEqual(fixture.metadataCount().sidecars, 2)
        let sub = try client.mkdir(root, "sub")
        try client.rename(root, "a", sub.controlFD, "a2")
        XCTAssertEqual(fixture.metadataCount().sidecars, 2, "a rename touches no sidecar")
        let b = try client.lookup(root, "b").controlFD
        _ = try client.link(sub.controlFD, "b-link", target: b)
        XCTAssertEqual(fixture.metadataCount().sidecars, 2, "a link touches no sidecar")
        try client.unlink(root, "b")
        XCTAssertEqual(fixture.metadataCount().sidecars, 2, "one link of b remains")
        // Rename over an existing file: the replaced file's last link is gone.
        try client.rename(sub.controlFD, "a2", sub.controlFD, "b-link")
        XCTAssertEqual(fixture.metadataCount().sidecars, 1, "the replaced file's sidecar is removed")
        _ = try client.symlink(root, "ln", target: "sub/b-link")
        XCTAssertEqual(try client.list(root), ["ln", "sub"])
        XCTAssertEqual(try client.list(sub.controlFD), ["b-link"])
        try client.unlink(sub.controlFD, "b-link")
        XCTAssertEqual(fixture.metadataCount().sidecars, 0)
        try client.unlink(root, "sub", flags: 0x200)
        client.shutdown()
        provider.shutdown()
        let report = try fixture.verify()
        XCTAssertTrue(report.isClean, "\(report.damage)")
        XCTAssertEqual(report.sidecars, 0)
        XCTAssertEqual(report.symlinks, 1)
    }

    func testUnlinkWhileOpenKeepsDataUntilCloseThenRemovesSidecar() throws {
        let c = try client.create(root, "open-then-unlinked")
        let fd = try XCTUnwrap(c.donated)
        try hostWrite(fd, Array("still here".utf8), at: 0)
        try client.flush(c.fd)
        try client.unlink(root, "open-then-unlinked")
        XCTAssertEqual(try hostRead(fd, count: 20, at: 0), Array("still here".utf8), "like any unlinked open file")
        try hostWrite(fd, Array("more".utf8), at: 10)
        try client.flush(c.fd)   // nothing to commit to any more, and no error
        Glibc.close(fd)
        try client.close([c.fd, c.inode.controlFD])
        XCTAssertEqual(fixture.metadataCount().sidecars, 0)
        XCTAssertEqual(fixture.metadataCount().journals, 0)
        client.shutdown()
        provider.shutdown()
        XCTAssertTrue(try fixture.verify().isClean)
    }

    func testRenameOverAnOpenFile() throws {
        try write("victim", "old")
        let v = try client.lookup(root, "victim").controlFD
        let opened = try client.open(v, flags: O_RDWR)
        try write("new", "new content")
        try client.rename(root, "new", root, "victim")
        try client.pwrite(opened.fd, Array("writes to the replaced file".utf8), at: 0)
        try client.close([opened.fd])
        client.shutdown()
        provider.shutdown()
        XCTAssertEqual(try fixture.plaintext("victim"), Array("new content".utf8))
        let report = try fixture.verify()
        XCTAssertTrue(report.isClean, "\(report.damage)")
        XCTAssertEqual(report.sidecars, 1)
    }

    func testMetaKeyringAndConfigAreUnreachable() throws {
        XCTAssertEqual(try client.list(root), [])
        for bad in [[".."], ["."], ["../meta"], ["..", "keyring"], ["/etc"]] {
            XCTAssertEqual(client.errno { try self.client.walk(self.root, bad) }, .EINVAL, "\(bad)")
        }
        for name in ["meta", "keyring", "config"] {
            XCTAssertEqual(try client.walk(root, [name]).status, .componentDoesNotExist)
        }
        // A symlink pointing out is served as a symlink, never followed.
        _ = try client.symlink(root, "escape", target: "../keyring")
        let walked = try client.walk(root, ["escape", "x"])
        XCTAssertEqual(walked.status, .componentSymlink)
        // A user file may be called "meta": it is data like any other.
        try write("meta", "user data")
        XCTAssertEqual(try client.list(root), ["escape", "meta"])
        XCTAssertEqual(fixture.metadataCount().sidecars, 1)
    }

    func testExclusiveCreateKeepsNoLeftovers() throws {
        _ = try client.create(root, "dup", mode: 0o600)
        XCTAssertEqual(client.errno { try self.client.create(self.root, "dup") }, .EEXIST)
        XCTAssertEqual(client.errno { try self.client.create(self.root, "no/slash") }, .EINVAL)
        XCTAssertEqual(fixture.metadataCount().sidecars, 1, "the failed create left no sidecar")
        let st = try client.fstat(try client.lookup(root, "dup").controlFD)
        XCTAssertEqual(st.mode & 0o7777, 0o600, "mode as requested, whatever the umask")
        client.shutdown()
        provider.shutdown()
        let report = try fixture.verify()
        XCTAssertTrue(report.isClean, "\(report.damage)")
    }

    /// The store creates files by String name; other byte names go through a
    /// temporary name. (Not checked with `verify`: its directory walk decodes
    /// names as UTF-8 and misses such files — a store-side limitation.)
    func testNonUTF8Name() throws {
        let name: [UInt8] = [0x66, 0xFF, 0xFE, 0x67]
        let r = try client.call(.openCreateAt, OpenCreateAtReq(dirFD: root, uid: NoUID, gid: NoGID, mode: 0o600,
                                                               flags: UInt32(O_RDWR), name: name), OpenCreateAtResp.self)
        try client.pwrite(r.newFD, [1, 2, 3], at: 0)
        try client.close([r.newFD, r.child.controlFD])
        let listed = try client.call(.walk, WalkReq(dirFD: root, path: [name]), WalkResp.self)
        XCTAssertEqual(listed.inodes.first?.stat.size, 3)
        let entries = try FileManager.default.contentsOfDirectory(atPath: fixture.storePath + "/data")
        XCTAssertEqual(entries.count, 1)
        XCTAssertFalse(entries.contains { $0.hasPrefix(".sealgofer-create") }, "no temporary name is left")
        XCTAssertEqual(fixture.metadataCount().sidecars, 1)
    }
}
