import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A directory with more entries than a Getdents64 response can count
/// (u16): asking for the largest budget must neither overflow the count nor
/// lose entries; paging through must list every name exactly once.
final class LargeDirectoryTests: HostileTestCase {
    /// tmpfs: 70 000 creations and removals on ext4 cost seconds.
    override var sandboxParent: String { "/dev/shm" }

    func testGetdents64PastSixtyFiveThousandEntries() throws {
        let big = sandbox.served + "/big"
        try sandbox.mkdir(big)
        // Names of at most 4 bytes: 24-byte host records, the densest possible.
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        let total = 70_000
        let dirFD = open(big, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(dirFD, 0)
        var expected = Set<String>()
        expected.reserveCapacity(total)
        for i in 0..<total {
            var n = i, name: [UInt8] = []
            repeat { name.append(alphabet[n % 36]); n /= 36 } while n > 0
            let s = String(decoding: name, as: UTF8.self)
            expected.insert(s)
            let fd = openat(dirFD, s, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
            if fd >= 0 { Glibc.close(fd) }
        }
        Glibc.close(dirFD)
        expected.formUnion([".", ".."])

        let root = try startAndMount()
        let dir = try walkOne(root, "big").controlFD
        let open = try XCTUnwrap(decode(openAt(dir, flags: O_RDONLY), OpenAtResp.self, .openAt)).openFD
        var seen: [String] = []
        var calls = 0
        var first = true
        while calls < 100 {
            calls += 1
            let reply = client.call(.getdents64, Getdents64Req(dirFD: open, count: first ? -Int32.max : Int32.max))
            first = false
            guard let resp = decode(reply, Getdents64Resp.self, .getdents64) else { break }
            if resp.dirents.isEmpty { break }
            seen += resp.dirents.map(\.nameString)
        }
        print("[dir] \(name): \(seen.count) entries in \(calls) Getdents64 calls")
        XCTAssertEqual(seen.count, expected.count, "entries lost or duplicated")
        XCTAssertEqual(Set(seen), expected)
        assertStillServing()
    }
}
