import CLinux
import Foundation
import Lisafs
@testable import SealedProvider
import SealedStore
import XCTest

/// The provider behind a real server, driven over a socketpair: writes through
/// the donated FD, commits, and the store read back offline.
final class DataPathTests: ProviderTestCase {
    func testWriteThroughDonatedFDFlushAndReadBackOffline() throws {
        try start()
        let marker = Array("PLAINTEXT-MARKER-\(UInt64.random(in: 0...UInt64.max))".utf8)
        let created = try client.create(root, "note.txt")
        let donated = try XCTUnwrap(created.donated, "a scratch FD is donated")
        defer { Glibc.close(donated) }
        var content = [UInt8](repeating: 0x41, count: 10_000) + marker + [UInt8](repeating: 0x42, count: 5_000)
        try hostWrite(donated, content, at: 0)
        XCTAssertEqual(try client.fstat(created.fd).size, UInt64(content.count), "FStat on the open FD reports the live scratch size")
        XCTAssertEqual(try client.fstat(created.inode.controlFD).size, UInt64(content.count), "so does the control FD")
        try client.flush(created.fd)
        XCTAssertEqual(provider.statistics.commits, 1)
        // Append and overwrite in place, then flush again.
        try hostWrite(donated, Array("tail".utf8), at: UInt64(content.count))
        try hostWrite(donated, Array("XY".utf8), at: 3)
        content += Array("tail".utf8)
        content[3] = 0x58; content[4] = 0x59
        try client.flush(created.fd)
        XCTAssertEqual(provider.statistics.commits, 2)
        try client.close([created.fd])
        stop()
        XCTAssertEqual(try fixture.plaintext("note.txt"), content)
        let report = try fixture.verify()
        XCTAssertTrue(report.isClean, "\(report.damage)")
        XCTAssertEqual(report.files, 1)
        XCTAssertEqual(StoreFixture.filesContaining(marker, under: fixture.storePath), [], "no plaintext at rest")
    }

    func testFlushWithoutChangesCostsOneFstat() throws {
        try start()
        let created = try client.create(root, "f")
        let donated = try XCTUnwrap(created.donated)
        defer { Glibc.close(donated) }
        try hostWrite(donated, [UInt8](repeating: 7, count: 50_000), at: 0)
        try client.flush(created.fd)
        let afterCommit = provider.statistics
        XCTAssertEqual(afterCommit.commits, 1)
        // A record taken in the same clock tick as a write is re-examined once.
        try client.flush(created.fd)
        let settled = provider.statistics
        for _ in 0..<20 { try client.flush(created.fd) }
        let after = provider.statistics
        XCTAssertEqual(after.commits, 1, "no commit without a change")
        XCTAssertEqual(after.scans, settled.scans, "no scan: the fstat shows nothing changed")
        XCTAssertEqual(after.unchangedChecks - settled.unchangedChecks, 20)
        // One more byte changed is noticed and sealed as exactly one chunk.
        try hostWrite(donated, [9], at: 20_000)
        try client.flush(created.fd)
        XCTAssertEqual(provider.statistics.commits, 2)
        XCTAssertEqual(provider.statistics.chunksCommitted - after.chunksCommitted, 1, "only the changed chunk is sealed")
        try client.close([created.fd])
        stop()
        var expected = [UInt8](repeating: 7, count: 50_000)
        expected[20_000] = 9
        XCTAssertEqual(try fixture.plaintext("f"), expected)
    }

    func testTwoOpensShareOneScratchAndCommitOnClose() throws {
        try start()
        let created = try client.create(root, "shared")
        let first = try XCTUnwrap(created.donated)
        defer { Glibc.close(first) }
        let control = try client.lookup(root, "shared").controlFD
        let second = try client.open(control, flags: O_RDONLY)
        let reader = try XCTUnwrap(second.donated)
        defer { Glibc.close(reader) }
        try hostWrite(first, Array("seen at once".utf8), at: 0)
        XCTAssertEqual(try hostRead(reader, count: 100, at: 0), Array("seen at once".utf8))
        XCTAssertEqual(try client.pread(second.fd, count: 100, at: 0), Array("seen at once".utf8), "PRead sees the scratch too")
        XCTAssertEqual(fcntl(reader, F_GETFL) & O_ACCMODE, O_RDONLY, "a read-only open gets a read-only FD")
        XCTAssertLessThan(pwrite(reader, "x", 1, 0), 0)
        // No Flush: closing the last open FD commits.
        try client.close([second.fd, created.fd])
        XCTAssertEqual(provider.statistics.commits, 1)
        stop()
        XCTAssertEqual(try fixture.plaintext("shared"), Array("seen at once".utf8))
    }

    func testTruncateBySetStatAndOTrunc() throws {
        try start()
        let created = try client.create(root, "t")
        let fd = try XCTUnwrap(created.donated)
        defer { Glibc.close(fd) }
        try hostWrite(fd, [UInt8](repeating: 1, count: 20_000), at: 0)
        try client.flush(created.fd)
        try client.setSize(created.inode.controlFD, 5_000)
        XCTAssertEqual(hostSize(fd), 5_000, "SetStat(size) resizes the shared scratch")
        XCTAssertEqual(try client.fstat(created.fd).size, 5_000)
        try client.setSize(created.inode.controlFD, 9_000)
        XCTAssertEqual(try hostRead(fd, count: 4_000, at: 5_000), [UInt8](repeating: 0, count: 4_000), "growth reads as zeros")
        try client.close([created.fd])
        // O_TRUNC on reopen (from the cached scratch).
        let reopened = try client.open(created.inode.controlFD, flags: O_RDWR | O_TRUNC)
        if let d = reopened.donated { XCTAssertEqual(hostSize(d), 0); Glibc.close(d) }
        XCTAssertEqual(try client.fstat(reopened.fd).size, 0)
        try client.pwrite(reopened.fd, Array("after".utf8), at: 0)
        try client.close([reopened.fd])
        // SetStat(size) on a file with nothing loaded.
        let other = try client.create(root, "u")
        if let d = other.donated { try hostWrite(d, [UInt8](repeating: 3, count: 12_345), at: 0); Glibc.close(d) }
        try client.close([other.fd])
        stop()
        try start { $0.maxCachedFiles = 0 }
        let u = try client.lookup(root, "u").controlFD
        XCTAssertEqual(try client.fstat(u).size, 12_345, "committed size from the sidecar")
        try client.setSize(u, 4_100)
        XCTAssertEqual(try client.fstat(u).size, 4_100)
        stop()
        XCTAssertEqual(try fixture.plaintext("t"), Array("after".utf8))
        XCTAssertEqual(try fixture.plaintext("u"), [UInt8](repeating: 3, count: 4_100))
        XCTAssertTrue(try fixture.verify().isClean)
    }

    func testLargeFileIsServedThroughRPCs() throws {
        try start { $0.donateLimit = 16 * 1024; $0.maxCachedFiles = 0 }
        let created = try client.create(root, "big")
        let fd = try XCTUnwrap(created.donated, "a new file is small")
        var content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try hostWrite(fd, content, at: 0)
        Glibc.close(fd)
        try client.close([created.fd])
        // Reopen: too large for a scratch now.
        let opened = try client.open(created.inode.controlFD, flags: O_RDWR)
        XCTAssertNil(opened.donated, "no FD above the donate limit")
        XCTAssertEqual(try client.pread(opened.fd, count: 1000, at: 40_000), Array(content[40_000..<41_000]))
        try client.pwrite(opened.fd, [UInt8](repeating: 0xEE, count: 9000), at: 95_000)  // overwrite and append
        content.replaceSubrange(95_000..<100_000, with: [UInt8](repeating: 0xEE, count: 5_000))
        content += [UInt8](repeating: 0xEE, count: 4_000)
        XCTAssertEqual(try client.fstat(opened.fd).size, 104_000)
        try client.setSize(created.inode.controlFD, 50_001)
        content.removeLast(content.count - 50_001)
        try client.pwrite(opened.fd, [5], at: 60_000)   // hole after a shrink reads as zeros
        content += [UInt8](repeating: 0, count: 60_000 - 50_001) + [5]
        XCTAssertEqual(try client.pread(opened.fd, count: 20_000, at: 45_000), Array(content[45_000..<60_001]))
        try client.flush(opened.fd)
        try client.close([opened.fd])
        XCTAssertEqual(provider.statistics.directLoads, 1)
        stop()
        XCTAssertEqual(try fixture.plaintext("big"), content)
        XCTAssertTrue(try fixture.verify().isClean)
    }

    func testFsyncMakesCommitsDurableAndPeriodicAndShutdownCommit() throws {
        try start { $0.commitInterval = 0.1 }
        let created = try client.create(root, "p")
        let fd = try XCTUnwrap(created.donated)
        defer { Glibc.close(fd) }
        try hostWrite(fd, Array("written, never flushed".utf8), at: 0)
        // The periodic committer seals it without any RPC.
        let deadline = Date(timeIntervalSinceNow: 5)
        while provider.statistics.commits == 0 && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(provider.statistics.commits, 1)
        let node = try XCTUnwrap(provider.store.dataDirectory >= 0 ? clinux_openat(provider.store.dataDirectory, "p", clinux_O_PATH | O_CLOEXEC, 0) : nil)
        defer { Glibc.close(node) }
        XCTAssertEqual(try provider.store.committedState(descriptor: node).size, 22)
        try client.fsync([created.fd])
        // Shutdown with the connection still up commits what is left.
        try hostWrite(fd, Array("!".utf8), at: 22)
        provider.shutdown()
        client.shutdown()
        XCTAssertEqual(try fixture.plaintext("p"), Array("written, never flushed!".utf8))
    }

    func testReadonlyServesButRefusesEveryMutation() throws {
        try start()
        let created = try client.create(root, "r")
        try client.pwrite(created.fd, Array("read me".utf8), at: 0)
        try client.close([created.fd])
        _ = try client.mkdir(root, "d")
        stop()
        try start(readonly: true)
        let r = try client.lookup(root, "r").controlFD
        XCTAssertEqual(client.errno { try self.client.open(r, flags: O_RDWR) }, .EROFS)
        XCTAssertEqual(client.errno { try self.client.open(r, flags: O_RDONLY | O_TRUNC) }, .EROFS)
        XCTAssertEqual(client.errno { try self.client.create(self.root, "new") }, .EROFS)
        XCTAssertEqual(client.errno { try self.client.mkdir(self.root, "x") }, .EROFS)
        XCTAssertEqual(client.errno { try self.client.unlink(self.root, "r") }, .EROFS)
        XCTAssertEqual(client.errno { try self.client.rename(self.root, "r", self.root, "s") }, .EROFS)
        XCTAssertEqual(client.errno { try self.client.setSize(r, 0) }, .EROFS)
        let opened = try client.open(r, flags: O_RDONLY)
        let fd = try XCTUnwrap(opened.donated)
        XCTAssertEqual(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY)
        XCTAssertEqual(try hostRead(fd, count: 100, at: 0), Array("read me".utf8))
        Glibc.close(fd)
        try client.close([opened.fd])
        XCTAssertEqual(provider.statistics.commits, 0)
    }

    /// The cache bound by count evicts the least recently used unused scratch, where a reopen
    /// makes a file recent again.
    func testCachedScratchesAreEvictedLeastRecentlyUsedFirst() throws {
        try start { $0.maxCachedFiles = 3 }
        var nodes: [UInt64] = []
        for i in 0..<4 {
            let c = try client.create(root, "f\(i)")
            try client.pwrite(c.fd, [UInt8](repeating: UInt8(i), count: 100), at: 0)
            if let d = c.donated { Glibc.close(d) }
            try client.close([c.fd])
            nodes.append(c.inode.controlFD)
        }
        XCTAssertEqual(provider.loadedFileCount, 3, "f0 was evicted as the fourth became unused")
        // Use f1 again: now f2 is the oldest unused entry.
        let again = try client.open(nodes[1], flags: O_RDONLY)
        XCTAssertEqual(provider.statistics.scratchReuses, 1)
        if let d = again.donated { Glibc.close(d) }
        try client.close([again.fd])
        let c = try client.create(root, "f4")
        if let d = c.donated { Glibc.close(d) }
        try client.close([c.fd, c.inode.controlFD])
        let fills = provider.statistics.scratchFills
        for (i, reused) in [(1, true), (3, true), (2, false)] {
            let o = try client.open(nodes[i], flags: O_RDONLY)
            if let d = o.donated { XCTAssertEqual(try hostRead(d, count: 1, at: 0), [UInt8(i)]); Glibc.close(d) }
            try client.close([o.fd])
            XCTAssertEqual(provider.statistics.scratchFills, fills + (reused ? 0 : 1), "f\(i) \(reused ? "stays cached" : "was evicted")")
        }
        try client.close(nodes)
    }

    func testScratchCacheIsReusedAndBoundedLRU() throws {
        try start { $0.scratchLimit = 64 * 1024; $0.maxCachedFiles = 8 }
        for i in 0..<6 {
            let c = try client.create(root, "f\(i)")
            try client.pwrite(c.fd, [UInt8](repeating: UInt8(i), count: 20_000), at: 0)
            try client.close([c.fd, c.inode.controlFD])
        }
        XCTAssertLessThanOrEqual(provider.scratchUsage, 64 * 1024, "unused scratches are evicted to the limit")
        XCTAssertLessThanOrEqual(provider.loadedFileCount, 3)
        // The most recent file is still cached: reopening decrypts nothing.
        let fills = provider.statistics.scratchFills
        let last = try client.lookup(root, "f5").controlFD
        let again = try client.open(last, flags: O_RDONLY)
        XCTAssertEqual(provider.statistics.scratchFills, fills)
        XCTAssertEqual(provider.statistics.scratchReuses, 1)
        if let d = again.donated { XCTAssertEqual(try hostRead(d, count: 5, at: 0), [5, 5, 5, 5, 5]); Glibc.close(d) }
        try client.close([again.fd])
        // The oldest was evicted: reopening fills a scratch from the store.
        let first = try client.lookup(root, "f0").controlFD
        let old = try client.open(first, flags: O_RDONLY)
        XCTAssertEqual(provider.statistics.scratchFills, fills + 1)
        XCTAssertEqual(try client.pread(old.fd, count: 3, at: 19_997), [0, 0, 0])
        if let d = old.donated { Glibc.close(d) }
        try client.close([old.fd])
    }

    func testDamagedChunkReadsFailWithEIO() throws {
        try start()
        let c = try client.create(root, "d")
        try client.pwrite(c.fd, [UInt8](repeating: 0x33, count: 3 * 4096), at: 0)
        try client.close([c.fd])
        stop()
        // Flip one ciphertext byte of chunk 1.
        let path = fixture.storePath + "/data/d"
        let fd = Glibc.open(path, O_RDWR)
        var byte: UInt8 = 0
        XCTAssertEqual(pread(fd, &byte, 1, 64 + 4096 + 100), 1)
        byte ^= 0x01
        XCTAssertEqual(pwrite(fd, &byte, 1, 64 + 4096 + 100), 1)
        Glibc.close(fd)
        try start()
        let node = try client.lookup(root, "d").controlFD
        let opened = try client.open(node, flags: O_RDONLY)
        XCTAssertNil(opened.donated, "no scratch can be filled from a damaged file")
        XCTAssertEqual(try client.pread(opened.fd, count: 100, at: 0), [UInt8](repeating: 0x33, count: 100), "intact chunks read")
        XCTAssertEqual(client.errno { try self.client.pread(opened.fd, count: 100, at: 4096) }, .EIO, "never wrong plaintext")
        try client.close([opened.fd])
    }

    func testStatReportsPlaintextSizeAndSensibleBlocks() throws {
        try start()
        let c = try client.create(root, "s")
        try client.pwrite(c.fd, [UInt8](repeating: 1, count: 10_001), at: 0)
        try client.close([c.fd, c.inode.controlFD])
        stop()
        try start { $0.maxCachedFiles = 0 }
        let walked = try client.walk(root, ["s"])
        XCTAssertEqual(walked.inodes.first?.stat.size, 10_001)
        let stats = try client.call(.walkStat, WalkReq(dirFD: root, path: ["", "s"]), WalkStatResp.self).stats
        XCTAssertEqual(stats.last?.size, 10_001)
        XCTAssertEqual(stats.last?.blocks, (10_001 + 511) / 512)
    }
}
