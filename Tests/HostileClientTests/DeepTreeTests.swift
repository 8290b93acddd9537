import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A directory chain far deeper than any path: the server's node tree then
/// holds one node per level. Releasing the deepest FD drops the whole chain;
/// doing that by recursion (one stack frame or more per level) would
/// overflow the serving thread's stack and crash the gofer.
final class DeepTreeTests: HostileTestCase {
    /// The debug gofer overflowed its 8 MiB main-thread stack at about 35 000
    /// levels (PathNode.decRef recursing into the parent); 60 000 leaves a
    /// margin. HOSTILE_DEEP_DEPTH overrides it. A sandbox can build such a chain
    /// on its own with MkdirAt from the newest child FD, closing the previous.
    static let depth = Int(ProcessInfo.processInfo.environment["HOSTILE_DEEP_DEPTH"] ?? "") ?? 60_000
    /// tmpfs: a 60 000-level chain on ext4 takes minutes to build and remove.
    override var sandboxParent: String { "/dev/shm" }

    /// Builds served/deep/d/d/.../d (`depth` levels) with *at calls only (fast,
    /// on the host side; the sandbox could do the same with MkdirAt).
    private func buildChain() throws {
        try sandbox.mkdir(sandbox.served + "/deep")
        var fd = open(sandbox.served + "/deep", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        for _ in 0..<Self.depth {
            guard mkdirat(fd, "d", 0o755) == 0 else { throw GoferSpawnError.system("mkdirat", errno) }
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            Glibc.close(fd)
            guard next >= 0 else { throw GoferSpawnError.system("openat", errno) }
            fd = next
        }
        Glibc.close(fd)
    }

    /// Deletes the chain from the top with short paths only: move d/d up
    /// to a temporary name, remove the now-empty d, rename back.
    private func removeChain() {
        let top = sandbox.served + "/deep"
        while access(top + "/d/d", F_OK) == 0 {
            guard rename(top + "/d/d", top + "/t") == 0, rmdir(top + "/d") == 0, rename(top + "/t", top + "/d") == 0 else { break }
        }
        rmdir(top + "/d")
        rmdir(top)
    }

    func testReleasingAVeryDeepChainDoesNotOverflowTheStack() throws {
        var t = Date()
        func lap(_ what: String) { print("[deep] \(what): \(String(format: "%.2f", Date().timeIntervalSince(t))) s"); t = Date() }
        try buildChain()
        lap("build")
        defer { removeChain(); lap("remove") }
        // Without Landlock: it checks every open by walking from the file up to
        // the served root, so walking this chain is quadratic (5 000 levels:
        // 2 s, 60 000: minutes; SECURITY.md). This test is about the node
        // tree's release, not about that cost.
        let root = try startAndMount(extraArguments: ["--no-landlock"])
        var current = try walkOne(root, "deep").controlFD
        var walked = 0
        // Largest Walk whose response fits one message.
        while walked < Self.depth {
            let n = min(13_000, Self.depth - walked)
            let reply = client.call(.walk, WalkReq(dirFD: current, path: [[UInt8]](repeating: [UInt8]("d"), count: n)))
            guard let resp = decode(reply, WalkResp.self, .walk), resp.inodes.count == n else {
                XCTFail("walk at depth \(walked) failed: \(reply)")
                return
            }
            let ids = resp.inodes.map(\.controlFD)
            lap("walk \(n)")
            close([current] + ids.dropLast())
            lap("close")
            current = ids.last!
            walked += n
        }
        print("[deep] \(name): holding one FD at depth \(walked)")
        XCTAssertEqual(fstat(current).mid, MID.fStat.rawValue)
        // Dropping the last reference releases all levels at once.
        let reply = client.call(.close, CloseReq(fds: [current]))
        lap("final close")
        XCTAssertEqual(reply.mid, MID.close.rawValue, "Close of the deepest FD: \(reply); gofer: \(String(describing: gofer?.exit))")
        XCTAssertTrue(gofer?.isAlive() == true, "gofer died releasing a \(walked)-deep chain: \(String(describing: gofer?.exit))")
        assertStillServing("after releasing the deep chain")
    }
}
