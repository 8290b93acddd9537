import Dispatch
import Foundation
import XCTest
@testable import HostProvider
@testable import Lisafs

/// Two mounts of one server racing renames/unlinks against walks: the shared
/// node tree must keep every answer consistent and never deadlock or leak.
final class ServerConcurrencyTests: XCTestCase {
    func testRenamesAndUnlinksRaceWalksOnAnotherConnection() throws {
        let tree = try TemporaryTree()
        defer { tree.remove() }
        try tree.mkdir("a")
        try tree.write("a/file", "x")
        let server = Server(provider: try HostProvider(rootPath: tree.path))
        let mutator = try RawLisafsClient(server: server)
        let walker = try RawLisafsClient(server: server)
        let mutatorRoot = try mutator.mount().root.controlFD
        let walkerRoot = try walker.mount().root.controlFD
        let iterations = 300
        var failures: [String] = []
        let failuresLock = NSLock()
        func fail(_ message: String) { failuresLock.lock(); failures.append(message); failuresLock.unlock() }

        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            do {
                if worker == 0 {
                    for i in 0..<iterations {
                        let (from, to) = i % 2 == 0 ? ("a", "b") : ("b", "a")
                        _ = try mutator.call(.renameAt, RenameAtReq(oldDir: mutatorRoot, newDir: mutatorRoot,
                                                                   oldName: Array(from.utf8), newName: Array(to.utf8)),
                                             expecting: RenameAtResp.self)
                        let made = try mutator.call(.mkdirAt, MkdirAtReq(dirFD: mutatorRoot, uid: NoUID, gid: NoGID, mode: 0o755,
                                                                         name: Array("tmp".utf8)), expecting: MkdirAtResp.self)
                        _ = try mutator.call(.unlinkAt, UnlinkAtReq(dirFD: mutatorRoot, flags: 0x200, name: Array("tmp".utf8)),
                                             expecting: UnlinkAtResp.self)
                        _ = try mutator.call(.close, CloseReq(fds: [made.childDir.controlFD]), expecting: CloseResp.self)
                    }
                } else {
                    for i in 0..<iterations {
                        let name = i % 2 == 0 ? "a" : "b"
                        let walk = try walker.walk(walkerRoot, [name, "file"])
                        switch walk.status {
                        case .success:
                            if walk.inodes.count != 2 || walk.inodes[1].stat.size != 1 { fail("bad walk \(walk)") }
                        case .componentDoesNotExist:
                            if walk.inodes.count > 1 { fail("inconsistent partial walk") }
                        case .componentSymlink:
                            fail("no symlinks here")
                        }
                        let walkedFDs = walk.inodes.map(\.controlFD)
                        if let dir = walkedFDs.first {
                            // Creating in a directory that may have been renamed meanwhile.
                            let reply = try walker.call(.walkStat, WalkReq(dirFD: dir, path: ["", "file"]))
                            if reply.mid != MID.walkStat.rawValue { fail("walkStat on a live dir failed") }
                        }
                        _ = try walker.call(.close, CloseReq(fds: walkedFDs), expecting: CloseResp.self)
                    }
                }
            } catch {
                fail("worker \(worker): \(error)")
            }
        }
        XCTAssertEqual(failures, [])
        mutator.shutdownAndWait()
        walker.shutdownAndWait()
        XCTAssertEqual(server.root.childCount, 0, "all nodes released once both connections are gone")
        XCTAssertEqual(server.root.referenceCount, 1)
    }
}
