import CLinux
import Foundation
import XCTest
@testable import HostProvider
@testable import Lisafs

/// HostProvider on real temporary directories: confinement first, then the
/// less common operations (sockets, FIFOs, xattrs, links, SetStat).
final class HostProviderTests: XCTestCase {
    var tree: TemporaryTree!
    var outside: TemporaryTree!
    var provider: HostProvider!
    var root: HostProvider.Node!

    override func setUpWithError() throws {
        tree = try TemporaryTree()
        outside = try TemporaryTree()
        try outside.write("secret", "top secret")
        try tree.mkdir("dir")
        try tree.write("dir/file", "inside")
        try tree.symlink("escape", to: outside.path)
        try tree.symlink("dir/up", to: "../..")
        provider = try HostProvider(rootPath: tree.path)
        root = try provider.mountRoot().node
    }

    override func tearDown() {
        if let root { provider.close(node: root) }
        tree?.remove()
        outside?.remove()
    }

    private func name(_ s: String) -> FileName { try! FileName(validating: s) }

    private func assertErrno(_ expected: Errno, _ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { XCTAssertEqual($0 as? Errno, expected, file: file, line: line) }
    }

    // MARK: Confinement

    func testSymlinksAreNeverFollowed() throws {
        let escape = try provider.walk(root, name("escape"))
        defer { provider.close(node: escape.node) }
        XCTAssertEqual(FileType.of(escape.stat), FileType.symlink, "walk stats the link itself")
        assertErrno(.ENOTDIR) { try self.provider.walk(escape.node, self.name("secret")) }
        assertErrno(.ENOTDIR) { try self.provider.mkdir(in: escape.node, self.name("x"), attributes: .init(mode: 0o755, uid: NoUID, gid: NoGID)) }
        XCTAssertEqual(try provider.readlink(escape.node), Array(outside.path.utf8))

        let dir = try provider.walk(root, name("dir"))
        defer { provider.close(node: dir.node) }
        let up = try provider.walk(dir.node, name("up"))
        defer { provider.close(node: up.node) }
        XCTAssertEqual(FileType.of(up.stat), FileType.symlink)
        assertErrno(.ENOTDIR) { try self.provider.walk(up.node, self.name("etc")) }
    }

    func testRootSymlinkTargetsCannotBeCreatedThrough() throws {
        // A symlink created by the client is stored, not resolved.
        let made = try provider.symlink(in: root, name("abs"), target: Array("/etc/passwd".utf8), uid: NoUID, gid: NoGID)
        defer { provider.close(node: made.node) }
        XCTAssertEqual(FileType.of(made.stat), FileType.symlink)
        assertErrno(.ENOTDIR) { try self.provider.walk(made.node, self.name("x")) }
        // Creating a file over an existing symlink name must not write through it.
        assertErrno(.EEXIST) {
            try self.provider.openCreate(in: self.root, self.name("escape"), attributes: .init(mode: 0o644, uid: NoUID, gid: NoGID),
                                         flags: OpenFlags(filtering: UInt32(O_RDWR)))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside.url("escape").path))
    }

    func testHeldDirectoryStaysPutWhenSwappedForSymlinkOnHost() throws {
        let dir = try provider.walk(root, name("dir"))
        defer { provider.close(node: dir.node) }
        // Someone outside the server swaps "dir" for a symlink pointing outside.
        try FileManager.default.moveItem(atPath: tree.url("dir").path, toPath: tree.url("moved").path)
        try tree.symlink("dir", to: outside.path)
        // The node still refers to the original directory by FD, never by path.
        assertErrno(.ENOENT) { try self.provider.walk(dir.node, self.name("secret")) }
        let file = try provider.walk(dir.node, name("file"))
        provider.close(node: file.node)
        XCTAssertEqual(file.stat.size, 6)
        _ = try provider.mkdir(in: dir.node, name("new"), attributes: .init(mode: 0o755, uid: NoUID, gid: NoGID))
        XCTAssertTrue(tree.exists("moved/new"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside.url("new").path))
    }

    func testServerRefusesDotDotBeforeProvider() throws {
        let client = try RawLisafsClient(server: Server(provider: provider))
        defer { client.shutdownAndWait() }
        let mountRoot = try client.mount().root.controlFD
        for path in [[".."], ["dir", "..", ".."], ["dir/../.."]] {
            XCTAssertEqual(try client.failure(.walk, WalkReq(dirFD: mountRoot, path: path)), .EINVAL, "\(path)")
        }
        XCTAssertEqual(try client.failure(.mkdirAt, MkdirAtReq(dirFD: mountRoot, uid: NoUID, gid: NoGID, mode: 0o755,
                                                               name: Array("../evil".utf8))), .EINVAL)
        XCTAssertEqual(try client.failure(.renameAt, RenameAtReq(oldDir: mountRoot, newDir: mountRoot,
                                                                 oldName: Array("dir".utf8), newName: Array("..".utf8))), .EINVAL)
        let viaLink = try client.walk(mountRoot, ["escape", "secret"])
        XCTAssertEqual(viaLink.status, .componentSymlink)
        XCTAssertEqual(viaLink.inodes.count, 1)
    }

    // MARK: Files

    func testOpenDonatesIndependentFDAndRespectsMode() throws {
        let file = try provider.walk(root, name("dir")).node
        defer { provider.close(node: file) }
        let inner = try provider.walk(file, name("file"))
        defer { provider.close(node: inner.node) }
        let opened = try provider.open(inner.node, flags: OpenFlags(filtering: UInt32(O_RDONLY)))
        defer { provider.close(openFile: opened.openFile) }
        let donated = try XCTUnwrap(opened.donatedFD)
        defer { _ = Glibc.close(donated) }
        XCTAssertNotEqual(donated, opened.openFile.fd)
        XCTAssertEqual(clinux_fcntl_int(donated, F_GETFL, 0) & O_ACCMODE, O_RDONLY)
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = try buffer.withUnsafeMutableBytes { try provider.read(opened.openFile, into: $0, at: 0) }
        XCTAssertEqual(Array(buffer.prefix(n)), Array("inside".utf8))
        XCTAssertEqual(Glibc.write(donated, "x", 1), -1, "read-only donation cannot write")
    }

    func testSetStatAppliesEachFieldAndReportsFailures() throws {
        let dir = try provider.walk(root, name("dir")).node
        defer { provider.close(node: dir) }
        let file = try provider.walk(dir, name("file")).node
        defer { provider.close(node: file) }
        let result = provider.setStat(file, SetStatChanges(mask: StatxMask.mode | StatxMask.size | StatxMask.mtime,
                                                           mode: 0o600, size: 2, mtime: Timespec(sec: 1_000_000, nsec: 5)))
        XCTAssertEqual(result, SetStatResult())
        let stat = try provider.stat(file)
        XCTAssertEqual(UInt32(stat.mode) & 0o7777, 0o600)
        XCTAssertEqual(stat.size, 2)
        XCTAssertEqual(stat.mtime.sec, 1_000_000)
        XCTAssertEqual(try tree.read("dir/file"), "in")

        let failed = provider.setStat(dir, SetStatChanges(mask: StatxMask.size | StatxMask.mode, mode: 0o711, size: 0))
        XCTAssertEqual(failed.failureMask, StatxMask.size, "truncating a directory fails, chmod still happens")
        XCTAssertEqual(failed.failure, .EISDIR)
        XCTAssertEqual(UInt32(try provider.stat(dir).mode) & 0o777, 0o711)
    }

    func testMknodRegularAndFifoOnly() throws {
        let attrs = CreateAttributes(mode: FileType.fifo | 0o600, uid: NoUID, gid: NoGID)
        let fifo = try provider.mknod(in: root, name("pipe"), attributes: attrs, major: 0, minor: 0)
        defer { provider.close(node: fifo.node) }
        XCTAssertEqual(FileType.of(fifo.stat), FileType.fifo)
        let opened = try provider.open(fifo.node, flags: OpenFlags(filtering: UInt32(O_RDONLY)))
        provider.close(openFile: opened.openFile)
        opened.donatedFD.map { _ = Glibc.close($0) }
        let regular = try provider.mknod(in: root, name("plain"), attributes: .init(mode: 0o644, uid: NoUID, gid: NoGID),
                                         major: 0, minor: 0)
        provider.close(node: regular.node)
        XCTAssertEqual(FileType.of(regular.stat), FileType.regular)
        assertErrno(.EPERM) {
            try self.provider.mknod(in: self.root, self.name("null"), attributes: .init(mode: FileType.character | 0o666, uid: NoUID, gid: NoGID),
                                    major: 1, minor: 3)
        }
        XCTAssertFalse(tree.exists("null"))
    }

    func testHardLinkAndRenameExchange() throws {
        let dir = try provider.walk(root, name("dir")).node
        defer { provider.close(node: dir) }
        let file = try provider.walk(dir, name("file")).node
        defer { provider.close(node: file) }
        let link = try provider.link(file, in: root, name("hard"))
        provider.close(node: link.node)
        XCTAssertEqual(link.stat.nlink, 2)
        XCTAssertEqual(try tree.read("hard"), "inside")
        try provider.rename(from: root, name("hard"), to: root, name("escape"), flags: 2)  // RENAME_EXCHANGE
        XCTAssertEqual(try tree.read("escape"), "inside")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: tree.url("hard").path), outside.path)
    }

    func testGetdentsBudgetNeverLosesEntries() throws {
        let names = Set((0..<40).map { "entry\($0)" })
        for entry in names { try tree.write("dir/" + entry, "") }
        let dir = try provider.walk(root, name("dir")).node
        defer { provider.close(node: dir) }
        let opened = try provider.open(dir, flags: OpenFlags(filtering: 0))
        defer { provider.close(openFile: opened.openFile) }
        XCTAssertNil(opened.donatedFD, "directories are not donated")
        var seen: [String] = []
        while true {
            let batch = try provider.getdents(opened.openFile, byteBudget: 100, restart: false)
            if batch.isEmpty { break }
            XCTAssertLessThanOrEqual(batch.reduce(0) { $0 + $1.hostRecordLength }, 100)
            seen += batch.map { String(decoding: $0.name, as: UTF8.self) }
        }
        XCTAssertEqual(Set(seen), names.union([".", "..", "file", "up"]))
        XCTAssertEqual(seen.count, Set(seen).count)
        XCTAssertTrue(try provider.getdents(opened.openFile, byteBudget: 10, restart: true).isEmpty,
                      "a budget smaller than one record yields nothing")
    }

    // MARK: Xattrs and sockets

    func testXattrsRoundTrip() throws {
        let dir = try provider.walk(root, name("dir")).node
        defer { provider.close(node: dir) }
        let file = try provider.walk(dir, name("file")).node
        defer { provider.close(node: file) }
        let key = Array("user.sealgofer".utf8)
        do {
            try provider.setXattr(file, name: key, value: Array("v1".utf8), flags: 0)
        } catch let error as Errno where error == .EOPNOTSUPP {
            throw XCTSkip("user xattrs unsupported on /tmp")
        }
        XCTAssertEqual(try provider.getXattr(file, name: key, size: 0), Array("v1".utf8))
        assertErrno(.ERANGE) { try self.provider.getXattr(file, name: key, size: 1) }
        XCTAssertTrue(try provider.listXattr(file, size: 0).contains(key))
        try provider.removeXattr(file, name: key)
        assertErrno(.ENODATA) { try self.provider.getXattr(file, name: key, size: 0) }
        let link = try provider.walk(root, name("escape")).node
        defer { provider.close(node: link) }
        assertErrno(.EOPNOTSUPP) { try self.provider.setXattr(link, name: key, value: [1], flags: 0) }
    }

    func testBindListenAcceptConnect() throws {
        let bound = try provider.bind(in: root, name("sock"), socketType: 1, attributes: .init(mode: 0o600, uid: NoUID, gid: NoGID))
        defer {
            provider.close(boundSocket: bound.boundSocket)
            provider.close(node: bound.node)
            _ = Glibc.close(bound.donatedFD)
        }
        XCTAssertEqual(FileType.of(bound.stat), FileType.socket)
        XCTAssertTrue(tree.exists("sock"))
        try provider.listen(bound.boundSocket, backlog: 4)
        assertErrno(.EAGAIN) { try self.provider.accept(bound.boundSocket) }

        let walked = try provider.walk(root, name("sock")).node
        defer { provider.close(node: walked) }
        let client = try provider.connect(walked, socketType: 1)
        defer { _ = Glibc.close(client) }
        let accepted = try provider.accept(bound.boundSocket)
        defer { _ = Glibc.close(accepted.fd) }
        XCTAssertEqual(Glibc.write(client, "ping", 4), 4)
        var buffer = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(Glibc.read(accepted.fd, &buffer, 4), 4)
        XCTAssertEqual(buffer, Array("ping".utf8))
        assertErrno(.ENXIO) { try self.provider.connect(walked, socketType: 3) }  // SOCK_RAW
    }
}
