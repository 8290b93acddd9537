import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Lisafs

final class ServerNameValidationTests: XCTestCase {
    func testAcceptsOrdinaryNames() throws {
        for name in ["a", "a.b", "...", ".hidden", "with space", String(repeating: "x", count: 255)] {
            XCTAssertEqual(try FileName(validating: name).bytes, Array(name.utf8), name)
        }
        XCTAssertEqual(try FileName(validating: [0xFF, 0xFE]).bytes, [0xFF, 0xFE])  // not UTF-8: still a name
    }

    func testRejectsDangerousNames() {
        for bad: [UInt8] in [[], Array(".".utf8), Array("..".utf8), Array("a/b".utf8), Array("/".utf8),
                             [0x61, 0, 0x62], [0], Array("../x".utf8)] {
            XCTAssertThrowsError(try FileName(validating: bad), "\(bad)") { XCTAssertEqual($0 as? Errno, .EINVAL) }
        }
        XCTAssertThrowsError(try FileName(validating: String(repeating: "x", count: 256))) {
            XCTAssertEqual($0 as? Errno, .ENAMETOOLONG)
        }
    }
}

final class ServerFDTableTests: XCTestCase {
    typealias P = ServerStubProvider
    let provider = ServerStubProvider()
    let renameLock = RWLock()
    let root = PathNode()

    private func control(_ label: String) -> ControlFD<P> {
        root.incRef()
        return ControlFD(node: root, handle: .init(label), fileType: FileType.directory, provider: provider, renameLock: renameLock)
    }

    private func errno(_ body: () throws -> Any) -> Errno? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? Errno
        }
    }

    func testIDsStartAtOneAndAreNeverReused() throws {
        let table = FDTable<P>()
        let a = try table.insert(.control(control("a")))
        let b = try table.insert(.control(control("b")))
        XCTAssertEqual([a, b], [1, 2])
        table.remove(b)?.release()
        let c = try table.insert(.control(control("c")))
        XCTAssertEqual(c, 3)
        XCTAssertEqual(errno { try table.lookup(b) }, .EBADF, "closed FDID")
        XCTAssertEqual(errno { try table.lookup(0) }, .EBADF, "FDID 0 is never issued")
        XCTAssertEqual(errno { try table.lookup(99) }, .EBADF, "never issued")
        XCTAssertNil(table.remove(99))
    }

    func testWrongKindIsEINVAL() throws {
        let table = FDTable<P>()
        let controlFD = control("c")
        let controlID = try table.insert(.control(controlFD))
        let openID = try table.insert(.open(OpenFD(control: controlFD, handle: .init("o"),
                                                   flags: OpenFlags(filtering: 0), provider: provider)))
        XCTAssertEqual(errno { try table.open(controlID) }, .EINVAL)
        XCTAssertEqual(errno { try table.boundSocket(controlID) }, .EINVAL)
        XCTAssertEqual(errno { try table.control(openID) }, .EINVAL)
        let fd = try table.open(openID)
        fd.release()
        XCTAssertTrue(provider.closed.isEmpty, "failed lookups must not drop the table's references")
    }

    func testCapacityGivesEMFILE() throws {
        let table = FDTable<P>(capacity: 2)
        _ = try table.insert(.control(control("1")))
        _ = try table.insert(.control(control("2")))
        let extra = control("3")
        XCTAssertEqual(errno { try table.insert(.control(extra)) }, .EMFILE)
        extra.release()
        XCTAssertEqual(provider.closed, ["node:3"])
    }

    func testOpenFileClosesBeforeItsNode() throws {
        let table = FDTable<P>()
        let controlFD = control("file")
        let controlID = try table.insert(.control(controlFD))
        let openID = try table.insert(.open(OpenFD(control: controlFD, handle: .init("file"),
                                                   flags: OpenFlags(filtering: 2), provider: provider)))
        table.remove(controlID)?.release()
        XCTAssertEqual(provider.closed, [], "the open FD still holds the control FD")
        table.remove(openID)?.release()
        XCTAssertEqual(provider.closed, ["open:file", "node:file"])
    }

    func testInFlightReferenceOutlivesClose() throws {
        let table = FDTable<P>()
        let id = try table.insert(.control(control("busy")))
        let inFlight = try table.control(id)           // a request on another channel
        table.remove(id)?.release()                    // Close arrives meanwhile
        XCTAssertEqual(provider.closed, [])
        XCTAssertEqual(errno { try table.control(id) }, .EBADF)
        inFlight.release()
        XCTAssertEqual(provider.closed, ["node:busy"])
    }
}

final class ServerNodeTreeTests: XCTestCase {
    func testChildLookupSharesNodesAndCountsReferences() {
        let root = PathNode()
        let a1 = root.childForWalk(Array("a".utf8))
        let a2 = root.childForWalk(Array("a".utf8))
        XCTAssertTrue(a1 === a2)
        XCTAssertEqual(a1.referenceCount, 2)
        XCTAssertEqual(root.referenceCount, 2, "server's reference + one per child node")
        a1.decRef()
        XCTAssertEqual(root.childCount, 1)
        a2.decRef()
        XCTAssertEqual(root.childCount, 0, "unreferenced nodes leave the tree")
        XCTAssertEqual(root.referenceCount, 1)
    }

    func testGrandchildKeepsParentAlive() {
        let root = PathNode()
        let dir = root.childForWalk(Array("dir".utf8))
        let file = dir.childForWalk(Array("file".utf8))
        dir.decRef()
        XCTAssertEqual(root.childCount, 1, "dir is still referenced by its child")
        file.decRef()
        XCTAssertEqual(root.childCount, 0)
        XCTAssertEqual(root.referenceCount, 1)
    }

    func testStaleNodeDoesNotEvictItsReplacement() {
        let root = PathNode()
        let old = root.childForWalk(Array("x".utf8))
        root.detachChild(Array("x".utf8))          // unlinked while still referenced
        old.markDeletedRecursively()
        let replacement = root.childForWalk(Array("x".utf8))
        XCTAssertFalse(old === replacement)
        old.decRef()
        XCTAssertTrue(root.existingChild(Array("x".utf8)) === replacement)
        XCTAssertTrue(old.isDeleted)
        XCTAssertFalse(replacement.isDeleted)
        replacement.decRef()
        XCTAssertEqual(root.referenceCount, 1)
    }

    func testMoveRehomesNode() {
        let root = PathNode()
        let a = root.childForWalk(Array("a".utf8))
        let b = root.childForWalk(Array("b".utf8))
        let file = a.childForWalk(Array("f".utf8))
        XCTAssertTrue(a.detachChild(Array("f".utf8)) === file)
        file.move(to: b, as: Array("g".utf8))
        XCTAssertEqual(file.debugPath, "/b/g")
        XCTAssertTrue(b.existingChild(Array("g".utf8)) === file)
        XCTAssertEqual(a.referenceCount, 1, "a lost the reference its child held")
        XCTAssertEqual(b.referenceCount, 2)
        file.decRef()
        XCTAssertEqual(b.childCount, 0)
        a.decRef()
        b.decRef()
        XCTAssertEqual(root.childCount, 0)
    }

    func testDeletionMarksSubtree() {
        let root = PathNode()
        let dir = root.childForWalk(Array("d".utf8))
        let sub = dir.childForWalk(Array("s".utf8))
        let leaf = sub.childForWalk(Array("l".utf8))
        dir.markDeletedRecursively()
        XCTAssertTrue(dir.isDeleted && sub.isDeleted && leaf.isDeleted)
        XCTAssertFalse(root.isDeleted)
    }

    /// A client can build a directory chain of any depth; releasing the
    /// deepest node frees every level. Both the reference drop and Swift's
    /// deallocation of the chain must be iterative: run on a 256 KiB stack,
    /// one frame per level (≥ 16 bytes) for 100 000 levels would overflow it.
    /// (A recursive decRef crashes here; the deallocation half also passes
    /// without PathNode's deinit, because Swift 6 compilers emit the same loop.)
    func testReleasingAVeryDeepChainDoesNotRecurse() throws {
        final class Box: @unchecked Sendable { var node: PathNode? }
        let root = PathNode()
        let deepest = Box()
        weak var top: PathNode?
        // Built in a closure so that no local variable of this frame keeps
        // the chain alive past `deepest.node = nil`.
        deepest.node = {
            var current = root.childForWalk(Array("d".utf8))
            for _ in 1..<100_000 {
                let next = current.childForWalk(Array("d".utf8))
                current.decRef()  // only the child's reference keeps it now
                current = next
            }
            return current
        }()
        XCTAssertEqual(root.childCount, 1)
        top = root.existingChild(Array("d".utf8))
        XCTAssertNotNil(top)
        try runOnSmallStack {
            deepest.node?.markDeletedRecursively()
            deepest.node?.decRef()
            deepest.node = nil  // last strong reference to the whole chain
        }
        XCTAssertEqual(root.childCount, 0)
        XCTAssertEqual(root.referenceCount, 1)
        XCTAssertNil(top, "the whole chain was freed")
    }

    func testMarkingAVeryDeepSubtreeDeletedDoesNotRecurse() throws {
        let root = PathNode()
        let top = root.childForWalk(Array("top".utf8))
        var chain: [PathNode] = [top]
        for _ in 0..<100_000 { chain.append(chain[chain.count - 1].childForWalk(Array("d".utf8))) }
        try runOnSmallStack { top.markDeletedRecursively() }
        XCTAssertTrue(chain.allSatisfy(\.isDeleted))
        for node in chain.reversed() { node.decRef() }
        XCTAssertEqual(root.referenceCount, 1)
    }
}

/// Runs `body` on a new thread with a 256 KiB stack and waits for it.
func runOnSmallStack(_ body: @escaping () -> Void) throws {
    final class Context { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, 256 * 1024)
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Context(body)).toOpaque()
    let rc = pthread_create(&thread, &attributes, { raw in
        Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, context)
    guard rc == 0 else {
        Unmanaged<Context>.fromOpaque(context).release()
        throw Errno(rc)
    }
    pthread_join(thread, nil)
}
