import CLinux
import Foundation
import Lisafs
@testable import SealedProvider
import SealedStore
import XCTest

/// Cold walks (a fresh provider, as in a new sandbox) report committed plaintext sizes, and
/// after a few misses in one directory the sizes are read ahead in the background, correctly.
final class SizeReadAheadTests: ProviderTestCase {
    private static func size(_ i: Int) -> Int { i * 37 % 5000 }

    /// `count` files d/f000… of distinct sizes, written through the provider.
    private func populate(_ count: Int) throws {
        try start()
        let dir = try client.mkdir(root, "d").controlFD
        for i in 0..<count {
            let c = try client.create(dir, String(format: "f%03d", i))
            if let d = c.donated {
                try hostWrite(d, [UInt8](repeating: UInt8(i & 0xFF), count: Self.size(i)), at: 0)
                Glibc.close(d)
            }
            try client.close([c.fd, c.inode.controlFD])
        }
        try client.close([dir])
    }

    private func walkedSize(_ path: String) throws -> UInt64 {
        let inode = try client.lookup(root, path)
        defer { try? client.close([inode.controlFD]) }
        return inode.stat.size
    }

    func testReadAheadFillsCorrectSizesAfterAFewMisses() throws {
        let count = 200
        try populate(count)
        try start()
        let readAhead = try XCTUnwrap(provider.context.readAhead)
        for i in 0..<SizeReadAhead.missThreshold {
            XCTAssertEqual(try walkedSize(String(format: "d/f%03d", i)), UInt64(Self.size(i)))
        }
        let deadline = Date(timeIntervalSinceNow: 20)
        while readAhead.filledCount < count - SizeReadAhead.missThreshold && Date() < deadline { usleep(10_000) }
        XCTAssertGreaterThanOrEqual(readAhead.filledCount, count - SizeReadAhead.missThreshold, "the other files were read ahead")
        // Every walk now reports the committed size, read ahead or not.
        for i in 0..<count {
            XCTAssertEqual(try walkedSize(String(format: "d/f%03d", i)), UInt64(Self.size(i)), "f\(i)")
        }
        // A commit after the read-ahead is seen by the next walk.
        let node = try client.lookup(root, "d/f150")
        let opened = try client.open(node.controlFD, flags: O_RDWR)
        _ = try client.pwrite(opened.fd, [UInt8](repeating: 1, count: 9000), at: 0)
        if let d = opened.donated { Glibc.close(d) }
        try client.close([opened.fd, node.controlFD])
        XCTAssertEqual(try walkedSize("d/f150"), 9000)
        try start()
        XCTAssertEqual(try walkedSize("d/f150"), 9000)
    }

    func testWithoutReadAheadColdWalksStillReportCommittedSizes() throws {
        try populate(40)
        try start { $0.readAheadSizes = false }
        XCTAssertNil(provider.context.readAhead)
        for i in 0..<40 { XCTAssertEqual(try walkedSize(String(format: "d/f%03d", i)), UInt64(Self.size(i))) }
    }

    func testShutdownWaitsForAPassInProgress() throws {
        try populate(300)
        try start()
        for i in 0..<SizeReadAhead.missThreshold { _ = try walkedSize(String(format: "d/f%03d", i)) }
        // Shutting down at once must neither crash nor leave the pass reading a closed store.
        client.shutdown()
        provider.shutdown()
        client = nil
        provider = nil
        XCTAssertEqual(try fixture.verify().isClean, true)
    }

    /// A stat is no access: reading the header for a cold walk, or reading ahead, leaves the
    /// ciphertext's (client-visible) access time alone.
    func testColdWalksAndReadAheadKeepAccessTimes() throws {
        let count = 40
        try populate(count)
        client.shutdown(); provider.shutdown(); client = nil; provider = nil
        let old = timespec(tv_sec: 1_000_000, tv_nsec: 0)
        for i in 0..<count {
            let path = fixture.storePath + String(format: "/data/d/f%03d", i)
            let omit = timespec(tv_sec: 0, tv_nsec: 1_073_741_822) // UTIME_OMIT: mtime stays
            var stamps = [old, omit]
            XCTAssertEqual(utimensat(AT_FDCWD, path, &stamps, 0), 0)
        }
        try start()
        for i in 0..<SizeReadAhead.missThreshold { _ = try walkedSize(String(format: "d/f%03d", i)) }
        let deadline = Date(timeIntervalSinceNow: 20)
        while provider.context.readAhead!.filledCount < count - SizeReadAhead.missThreshold && Date() < deadline { usleep(10_000) }
        for i in 0..<count {
            XCTAssertEqual(try client.lookup(root, String(format: "d/f%03d", i)).stat.atime.sec, 1_000_000, "f\(i)")
        }
    }

    /// A size read while anything was committed or removed is not stored.
    func testCacheRefusesAStoreAfterARemoval() {
        let cache = PlaintextSizeCache()
        var st = Statx()
        st.size = 100
        let key = InodeKey(st)
        let generation = cache.generation
        cache.remove(InodeKey(Statx()))
        XCTAssertFalse(cache.store(key, ciphertext: st, plaintextSize: 36, ifGeneration: generation))
        XCTAssertNil(cache.lookup(key, ciphertext: st))
        XCTAssertTrue(cache.store(key, ciphertext: st, plaintextSize: 36, ifGeneration: cache.generation))
        XCTAssertEqual(cache.lookup(key, ciphertext: st), 36)
    }
}
