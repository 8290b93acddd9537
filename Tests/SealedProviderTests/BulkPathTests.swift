import CLinux
import Foundation
import Lisafs
@testable import SealedProvider
import SealedStore
import XCTest

/// Start/stop handshake with a writer thread.
final class WriterState: @unchecked Sendable {
    private let lock = NSCondition()
    private var stopping = false, finished = false, count = 0
    var shouldStop: Bool { lock.lock(); defer { lock.unlock() }; return stopping }
    var writes: Int { lock.lock(); defer { lock.unlock() }; return count }
    func wrote() { lock.lock(); count += 1; lock.unlock() }
    func stop() { lock.lock(); stopping = true; lock.unlock() }
    func finish() { lock.lock(); finished = true; lock.broadcast(); lock.unlock() }
    func waitFinished() { lock.lock(); while !finished { lock.wait() }; lock.unlock() }
}

/// The bulk data path as the provider uses it: commits sealed straight from the
/// scratch, scratches filled by parallel decryption, RPC reads decrypted straight
/// into the reply. Everything is checked against the store read back offline.
final class BulkPathTests: ProviderTestCase {
    let c = 4096

    private func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var x = seed &* 0x9E3779B97F4A7C15 | 1
        return (0..<n).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
    }

    private func scratchContent(_ fd: Int32) throws -> [UInt8] {
        try hostRead(fd, count: Int(hostSize(fd)), at: 0)
    }

    /// Sizes around chunk boundaries: written, committed, reopened from a fresh
    /// provider (decrypt-on-open), changed again and committed again.
    func testBoundarySizesCommitAndReopen() throws {
        let sizes = [0, 1, c - 1, c, c + 1, 5 * c + 7, 40 * c]
        try start()
        for (i, size) in sizes.enumerated() {
            let created = try client.create(root, "f\(i)")
            let fd = try XCTUnwrap(created.donated)
            try hostWrite(fd, bytes(size, seed: UInt64(i + 1)), at: 0)
            try client.flush(created.fd)
            Glibc.close(fd)
            try client.close([created.fd])
        }
        stop()
        for (i, size) in sizes.enumerated() {
            XCTAssertEqual(try fixture.plaintext("f\(i)"), bytes(size, seed: UInt64(i + 1)), "size \(size)")
        }
        // A fresh provider decrypts into new scratches; then one byte, a grow and a shrink.
        try start()
        var models: [[UInt8]] = []
        for (i, size) in sizes.enumerated() {
            let node = try client.lookup(root, "f\(i)").controlFD
            let opened = try client.open(node, flags: O_RDWR)
            let fd = try XCTUnwrap(opened.donated)
            var model = bytes(size, seed: UInt64(i + 1))
            XCTAssertEqual(try scratchContent(fd), model, "decrypt-on-open, size \(size)")
            if size > 0 {
                try hostWrite(fd, [~model[size / 2]], at: UInt64(size / 2))
                model[size / 2] = ~model[size / 2]
            }
            let grown = size + c + 3
            let tail = bytes(c + 3, seed: 77)
            try hostWrite(fd, tail, at: UInt64(size))
            model += tail
            try client.flush(opened.fd)
            XCTAssertEqual(grown, model.count)
            let cut = size / 3
            XCTAssertEqual(ftruncate(fd, off_t(cut)), 0)
            model = Array(model[0..<cut])
            try client.flush(opened.fd)
            models.append(model)
            Glibc.close(fd)
            try client.close([opened.fd])
        }
        stop()
        for (i, model) in models.enumerated() {
            XCTAssertEqual(try fixture.plaintext("f\(i)"), model, "size \(sizes[i]) changed")
        }
        let report = try fixture.verify()
        XCTAssertTrue(report.isClean, "\(report.damage)")
    }

    /// Holes in the scratch read as zeros; truncation and regrowth by the client.
    func testSparseScratchAndTruncation() throws {
        try start()
        let created = try client.create(root, "s")
        let fd = try XCTUnwrap(created.donated)
        defer { Glibc.close(fd) }
        let data = bytes(1000, seed: 5)
        try hostWrite(fd, data, at: UInt64(20 * c + 5))
        var model = [UInt8](repeating: 0, count: 20 * c + 5) + data
        try client.flush(created.fd)
        XCTAssertEqual(ftruncate(fd, off_t(3 * c + 1)), 0)
        model = Array(model[0..<(3 * c + 1)])
        try client.flush(created.fd)
        XCTAssertEqual(ftruncate(fd, off_t(10 * c)), 0)   // regrown: zeros
        model += [UInt8](repeating: 0, count: 10 * c - model.count)
        try hostWrite(fd, [9], at: UInt64(2 * c))
        model[2 * c] = 9
        try client.flush(created.fd)
        try client.close([created.fd])
        stop()
        XCTAssertEqual(try fixture.plaintext("s"), model)
        XCTAssertTrue(try fixture.verify().isClean)
    }

    /// A writer keeps changing the scratch (writes, appends, truncations) while
    /// Flushes commit; once it stops, an FSync must capture exactly the final
    /// content: nothing a commit raced with is lost, and commits that raced with
    /// writes left a consistent store.
    func testWritesDuringCommitsAreNeverLost() throws {
        try start()
        for round in 0..<6 {
            let created = try client.create(root, "r\(round)")
            let fd = try XCTUnwrap(created.donated)
            try hostWrite(fd, bytes(30 * c + 11, seed: UInt64(round)), at: 0)
            try client.flush(created.fd)
            let state = WriterState()
            let writer = Thread { [c] in
                var rng = SeededRandom(seed: UInt64(round) &* 7919 &+ 1)
                while !state.shouldStop {
                    let r = rng.next()
                    switch r % 8 {
                    case 0: _ = ftruncate(fd, off_t(Int(r >> 8) % (40 * c)))
                    default:
                        let offset = Int(r >> 8) % (40 * c)
                        var chunk = [UInt8](repeating: UInt8(truncatingIfNeeded: r >> 40), count: 1 + Int(r >> 20) % (2 * c))
                        chunk[0] = UInt8(truncatingIfNeeded: r)
                        _ = chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
                    }
                    state.wrote()
                }
                state.finish()
            }
            writer.start()
            while state.writes < 10 { usleep(100) }
            for _ in 0..<25 { try client.flush(created.fd) }
            state.stop()
            state.waitFinished()
            // FSync after the last write (a full scan): what it committed, read
            // back through the provider's own store before anything else commits.
            // (A plain Flush may miss a write that was in flight during the previous
            // commit's fstat: the kernel moves ctime before the data lands. FSync,
            // the last close and the periodic full check scan every chunk.)
            try client.flush(created.fd)
            try client.fsync([created.fd])
            let scratchNow = try scratchContent(fd)
            let committed: [UInt8] = try {
                let path = Glibc.openat(provider.store.dataDirectory, "r\(round)", O_RDONLY | O_CLOEXEC)
                XCTAssertGreaterThanOrEqual(path, 0)
                defer { Glibc.close(path) }
                let file = try provider.store.openFile(descriptor: path)
                defer { file.close() }
                return try file.readAll()
            }()
            if committed != scratchNow {
                let diff = zip(committed, scratchNow).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                XCTFail("round \(round): FSync after the last write did not commit it: committed \(committed.count) bytes, scratch \(scratchNow.count), first difference at \(diff.map(String.init) ?? "-")")
            }
            let final = try scratchContent(fd)
            Glibc.close(fd)
            try client.close([created.fd])
            stop()
            XCTAssertEqual(try fixture.plaintext("r\(round)"), final, "round \(round)")
            let report = try fixture.verify()
            XCTAssertTrue(report.isClean, "\(report.damage)")
            try start()
        }
    }

    /// RPC reads (no scratch) of long ranges mixing clean committed chunks and
    /// dirty ones, and a damaged chunk: EIO, never wrong plaintext.
    func testRPCReadsMixCleanAndDirtyChunksAndFailOnDamage() throws {
        try start { $0.donateLimit = 8 * 1024; $0.maxCachedFiles = 0 }
        let created = try client.create(root, "big")
        let fd = try XCTUnwrap(created.donated, "a new file is small")
        var model = bytes(60 * c + 123, seed: 42)
        try hostWrite(fd, model, at: 0)
        Glibc.close(fd)
        try client.close([created.fd])
        let opened = try client.open(created.inode.controlFD, flags: O_RDWR)
        XCTAssertNil(opened.donated)
        for offset in [7 * c + 1, 30 * c, 59 * c + 100] {
            let patch = bytes(c / 2, seed: UInt64(offset))
            _ = try client.pwrite(opened.fd, patch, at: UInt64(offset))
            model.replaceSubrange(offset..<min(model.count, offset + patch.count), with: patch.prefix(model.count - offset))
            if offset + patch.count > model.count { model += patch.suffix(offset + patch.count - model.count) }
        }
        for (offset, count) in [(0, 60 * c + 123), (1, 40 * c), (6 * c, 3 * c), (29 * c + 17, 5 * c), (59 * c, 2 * c)] {
            let got = try client.pread(opened.fd, count: UInt32(count), at: UInt64(offset))
            XCTAssertEqual(got, Array(model[offset..<min(model.count, offset + count)]), "pread \(offset)+\(count)")
        }
        try client.flush(opened.fd)
        try client.close([opened.fd])
        stop()
        XCTAssertEqual(try fixture.plaintext("big"), model)

        // Flip a ciphertext byte of chunk 33.
        let data = Glibc.open(fixture.storePath + "/data/big", O_RDWR)
        XCTAssertGreaterThanOrEqual(data, 0)
        let layout = ChunkLayout(chunkSize: c, suite: try fixture.withStore { $0.config.suite })
        var byte: UInt8 = 0
        let at = off_t(layout.slotOffset(33)) + 40
        XCTAssertEqual(pread(data, &byte, 1, at), 1)
        byte ^= 0x80
        XCTAssertEqual(pwrite(data, &byte, 1, at), 1)
        Glibc.close(data)
        try start { $0.donateLimit = 8 * 1024; $0.maxCachedFiles = 0 }
        let node = try client.lookup(root, "big").controlFD
        let again = try client.open(node, flags: O_RDONLY)
        XCTAssertNil(again.donated)
        XCTAssertEqual(try client.pread(again.fd, count: UInt32(30 * c), at: 0), Array(model[0..<(30 * c)]), "intact chunks read")
        for (offset, count) in [(0, 60 * c), (33 * c + 5, 10), (20 * c, 20 * c)] {
            XCTAssertEqual(client.errno { try self.client.pread(again.fd, count: UInt32(count), at: UInt64(offset)) }, .EIO, "never wrong plaintext")
        }
        try client.close([again.fd])
        stop()
        // With room for a scratch, the damaged file gets none (its fill fails) and reads still fail.
        try start()
        let node2 = try client.lookup(root, "big").controlFD
        let third = try client.open(node2, flags: O_RDONLY)
        XCTAssertNil(third.donated, "no scratch from a damaged file")
        XCTAssertEqual(client.errno { try self.client.pread(third.fd, count: UInt32(2 * c), at: UInt64(32 * c)) }, .EIO)
        try client.close([third.fd])
    }
}
