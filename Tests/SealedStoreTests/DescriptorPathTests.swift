import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// The bulk data path: `commit(fromDescriptor:…)`, `decrypt(into:)`, `read(into:at:)`.
final class DescriptorPathTests: XCTestCase {
    override func tearDown() { TestHooks.crashAt = nil }

    private let c = 4096

    /// A plaintext file (what a scratch is) holding `content`.
    private func plaintextFile(_ dir: TempDir, _ content: [UInt8], name: String = "plain") -> Int32 {
        let fd = open(dir.sub(name), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        write(fd, content)
        return fd
    }

    private func write(_ fd: Int32, _ bytes: [UInt8], at offset: Int = 0) {
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        XCTAssertEqual(n, bytes.count)
    }

    private func contents(_ fd: Int32) -> [UInt8] {
        var st = stat(); fstat(fd, &st)
        var out = [UInt8](repeating: 0xEE, count: Int(st.st_size))
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        XCTAssertEqual(n, out.count)
        return out
    }

    /// Observed plaintexts, recorded from worker threads.
    final class Observed: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var chunks: [UInt64: [UInt8]] = [:]
        private(set) var repeats = 0
        func add(_ index: UInt64, _ p: UnsafeRawBufferPointer) {
            lock.lock(); defer { lock.unlock() }
            if chunks[index] != nil { repeats += 1 }
            chunks[index] = Array(p)
        }
    }

    private func chunked(_ content: [UInt8]) -> [UInt64: [UInt8]] {
        var out: [UInt64: [UInt8]] = [:]
        for o in stride(from: 0, to: content.count, by: c) { out[UInt64(o / c)] = Array(content[o..<min(o + c, content.count)]) }
        return out
    }

    func testBoundarySizesRoundTrip() throws {
        for suite in Fixture.suites {
            for parallelism in [1, 2, 4] {
                let dir = TempDir()
                var options = SealedStore.Options()
                options.parallelism = parallelism
                var store = try Fixture.store(dir, suite: suite, options: options)
                let sizes = [0, 1, c - 1, c, c + 1, 7 * c + 123, 64 * c, 100 * c + 1]
                for (i, size) in sizes.enumerated() {
                    let content = Fixture.bytes(size, seed: UInt64(i + 1))
                    let src = plaintextFile(dir, content)
                    defer { close(src) }
                    let f = try store.createFile(in: store.dataDirectory, name: "f\(i)")
                    let seen = Observed()
                    let n = UInt64((size + c - 1) / c)
                    let report = try f.commit(fromDescriptor: src, chunks: Array(0..<n), newSize: UInt64(size), durable: i % 2 == 0) { seen.add($0, $1) }
                    let label = "\(suite) p\(parallelism) size \(size)"
                    XCTAssertFalse(report.shortRead, label)
                    XCTAssertEqual(seen.repeats, 0, label)
                    XCTAssertEqual(seen.chunks, chunked(content), "observer sees exactly what was sealed: \(label)")
                    XCTAssertEqual(try f.readAll(), content, label)
                    f.close()
                }
                store = try reopen(store, options: options)
                for (i, size) in sizes.enumerated() {
                    let content = Fixture.bytes(size, seed: UInt64(i + 1))
                    let label = "\(suite) p\(parallelism) size \(size) after reopen"
                    let f = try openPath(store, "f\(i)")
                    XCTAssertEqual(try f.readAll(), content, label)
                    var st = stat(); fstat(f.fileDescriptor, &st)
                    XCTAssertEqual(UInt64(st.st_size), ChunkLayout(chunkSize: c, suite: suite).fileLength(size: UInt64(size)), label)
                    // decrypt(into:) replaces whatever the target held.
                    let target = plaintextFile(dir, Fixture.bytes(200 * c, seed: 99), name: "target")
                    let seen = Observed()
                    XCTAssertEqual(try f.decrypt(into: target) { seen.add($0, $1) }, UInt64(size), label)
                    XCTAssertEqual(contents(target), content, label)
                    XCTAssertEqual(seen.chunks, chunked(content), label)
                    XCTAssertEqual(seen.repeats, 0, label)
                    close(target)
                    // read(into:at:) at awkward offsets and lengths.
                    for (offset, count) in [(0, size), (1, size), (c - 1, 2), (c, c), (c + 1, 3 * c), (size / 2, size), (0, 1), (size, 10), (size + 5, 10)] {
                        var buffer = [UInt8](repeating: 0xAB, count: count + 8)
                        let got = try buffer.withUnsafeMutableBytes { try f.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]), at: UInt64(offset)) }
                        let expected = offset < size ? Array(content[offset..<min(size, offset + count)]) : []
                        XCTAssertEqual(got, expected.count, "\(label) read \(offset)+\(count)")
                        XCTAssertEqual(Array(buffer[0..<got]), expected, "\(label) read \(offset)+\(count)")
                        XCTAssertEqual(Array(buffer[count...]), [UInt8](repeating: 0xAB, count: 8), "no write past the buffer")
                    }
                    f.close()
                }
                XCTAssertTrue(Verifier.run(store: store).isClean)
                store.close()
            }
        }
    }

    /// In-place overwrites (journaled), appends, holes and truncation, checked against the
    /// plaintext file after every commit and after a reopen.
    func testPartialChangesHolesAndTruncation() throws {
        for suite in Fixture.suites {
            let dir = TempDir()
            var store = try Fixture.store(dir, suite: suite)
            let f = try store.createFile(in: store.dataDirectory, name: "f")
            var model = Fixture.bytes(10 * c + 100, seed: 3)
            let src = plaintextFile(dir, model)
            defer { close(src) }
            try f.commit(fromDescriptor: src, chunks: Array(0..<11), newSize: UInt64(model.count), durable: false)
            XCTAssertEqual(try f.readAll(), model)

            // Overwrite chunks 2 and 7 in place: referenced chunks go through the journal.
            let p2 = Fixture.bytes(c, seed: 4), p7 = Fixture.bytes(50, seed: 5)
            write(src, p2, at: 2 * c); write(src, p7, at: 7 * c + 10)
            model.replaceSubrange(2 * c..<3 * c, with: p2); model.replaceSubrange((7 * c + 10)..<(7 * c + 60), with: p7)
            try f.commit(fromDescriptor: src, chunks: [2, 7], newSize: UInt64(model.count), durable: true)
            XCTAssertEqual(try f.readAll(), model, "\(suite) overwrite")

            // Grow with a hole: the old last chunk and the new ones come from the file (holes read as zeros).
            let tail = Fixture.bytes(777, seed: 6)
            write(src, tail, at: 30 * c)
            model += [UInt8](repeating: 0, count: 30 * c - model.count) + tail
            XCTAssertEqual(contents(src), model)
            try f.commit(fromDescriptor: src, chunks: Array(10..<31), newSize: UInt64(model.count), durable: false)
            XCTAssertEqual(try f.readAll(), model, "\(suite) hole")

            // Grow again without giving the new chunks: the store's rule, zeros.
            let grown = model.count + 3 * c
            try f.commit(fromDescriptor: src, chunks: [30], newSize: UInt64(grown), durable: false)
            let sparseModel = model + [UInt8](repeating: 0, count: 3 * c)
            XCTAssertEqual(try f.readAll(), sparseModel, "\(suite) zeros for new chunks not given")

            // Truncate to a partial chunk: only the new last chunk is given.
            ftruncate(src, off_t(5 * c + 9))
            model = Array(model[0..<(5 * c + 9)])
            try f.commit(fromDescriptor: src, chunks: [5], newSize: UInt64(model.count), durable: false)
            XCTAssertEqual(try f.readAll(), model, "\(suite) truncate")
            // Truncate without giving the last chunk: cut from the committed one.
            try f.commit(fromDescriptor: src, chunks: [], newSize: UInt64(3 * c + 1), durable: false)
            model = Array(model[0..<(3 * c + 1)])
            XCTAssertEqual(try f.readAll(), model, "\(suite) truncate, chunk not given")
            try f.commit(fromDescriptor: src, chunks: [], newSize: 0, durable: true)
            XCTAssertEqual(try f.readAll(), [])
            f.close()
            store = try reopen(store)
            let g = try openPath(store, "f")
            XCTAssertEqual(g.committedSize, 0)
            g.close()
            XCTAssertTrue(Verifier.run(store: store).isClean)
            store.close()
        }
    }

    /// A file that shrinks during the commit: the missing bytes are committed as zeros and reported.
    func testShortReadIsReportedAndZeroFilled() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        let content = Fixture.bytes(3 * c + 5, seed: 8)
        let src = plaintextFile(dir, Array(content[0..<(2 * c + 1)]))
        defer { close(src) }
        let report = try f.commit(fromDescriptor: src, chunks: [0, 1, 2, 3], newSize: UInt64(content.count), durable: false)
        XCTAssertTrue(report.shortRead)
        XCTAssertEqual(try f.readAll(), Array(content[0..<(2 * c + 1)]) + [UInt8](repeating: 0, count: c + 4))
        f.close()
        store.close()
    }

    func testInvalidChunkListsAreRefused() throws {
        let dir = TempDir()
        let store = try Fixture.store(dir)
        let f = try store.createFile(in: store.dataDirectory, name: "f")
        let src = plaintextFile(dir, Fixture.bytes(3 * c, seed: 1))
        defer { close(src) }
        XCTAssertThrowsError(try f.commit(fromDescriptor: src, chunks: [3], newSize: UInt64(3 * c), durable: false))
        XCTAssertThrowsError(try f.commit(fromDescriptor: src, chunks: [1, 0], newSize: UInt64(3 * c), durable: false))
        XCTAssertThrowsError(try f.commit(fromDescriptor: src, chunks: [1, 1], newSize: UInt64(3 * c), durable: false))
        XCTAssertEqual(f.committedSize, 0, "nothing committed by a refused call")
        f.close()
        store.close()
    }

    /// A damaged chunk makes every bulk read of it fail; it never yields plaintext.
    func testTamperedChunkFailsBulkReads() throws {
        for suite in Fixture.suites {
            let dir = TempDir()
            var store = try Fixture.store(dir, suite: suite)
            let f = try store.createFile(in: store.dataDirectory, name: "f")
            let content = Fixture.bytes(40 * c + 17, seed: 12)
            let src = plaintextFile(dir, content)
            defer { close(src) }
            try f.commit(fromDescriptor: src, chunks: Array(0..<41), newSize: UInt64(content.count), durable: true)
            f.close()
            store.close()
            // Flip one ciphertext byte of chunk 23.
            let layout = ChunkLayout(chunkSize: c, suite: suite)
            let data = open(dir.sub("store/data/f"), O_RDWR)
            XCTAssertGreaterThanOrEqual(data, 0)
            var b: UInt8 = 0
            let at = off_t(layout.slotOffset(23)) + off_t(layout.nonceLength + 100)
            XCTAssertEqual(pread(data, &b, 1, at), 1)
            b ^= 0x40
            XCTAssertEqual(pwrite(data, &b, 1, at), 1)
            close(data)
            store = try SealedStore.open(at: dir.sub("store"), key: Fixture.key)
            let g = try openPath(store, "f")
            let target = plaintextFile(dir, [], name: "target")
            assertDamage(.chunk, chunk: 23) { _ = try g.decrypt(into: target) }
            assertDamage(.chunk, chunk: 23) { _ = try g.decrypt(into: nil) }
            close(target)
            var buffer = [UInt8](repeating: 0, count: content.count)
            for (offset, count) in [(0, content.count), (23 * c + 5, 10), (20 * c, 8 * c)] {
                assertDamage(.chunk, chunk: 23) {
                    _ = try buffer.withUnsafeMutableBytes { try g.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]), at: UInt64(offset)) }
                }
            }
            // Intact chunks still read.
            let got = try buffer.withUnsafeMutableBytes { try g.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(20 * c)]), at: 0) }
            XCTAssertEqual(got, 20 * c)
            XCTAssertEqual(Array(buffer[0..<(20 * c)]), Array(content[0..<(20 * c)]))
            g.close()
            store.close()
        }
    }

    /// A simulated crash at every commit step leaves exactly the old or the new content.
    func testCrashAtEveryStepIsAtomic() throws {
        for suite in Fixture.suites {
            for step in [CommitStep.directWritten, .journalWritten, .chunksApplied, .sidecarWritten, .headerWritten] {
                for scenario in ["overwrite+grow", "append", "shrink", "move"] {
                    let dir = TempDir()
                    var options = SealedStore.Options()
                    if scenario == "move" { options.rekeyThreshold = 6 }
                    var store = try Fixture.store(dir, suite: suite, options: options)
                    let f = try store.createFile(in: store.dataDirectory, name: "f")
                    let old = Fixture.bytes(3 * c + 7, seed: 9)
                    try f.commitAll(old)
                    let new: [UInt8]
                    let chunks: [UInt64]
                    switch scenario {
                    case "append": new = old + Fixture.bytes(9000, seed: 10); chunks = [3, 4, 5]
                    case "shrink": new = Array(old[0..<5000]); chunks = [1]
                    default:
                        new = Array(old[0..<c]) + Fixture.bytes(c, seed: 11) + Array(old[(2 * c)...]) + Fixture.bytes(10000, seed: 12)
                        chunks = [1, 3, 4, 5]
                    }
                    let src = plaintextFile(dir, new)
                    TestHooks.crashAt = step
                    var crashed = false
                    do { try f.commit(fromDescriptor: src, chunks: chunks, newSize: UInt64(new.count), durable: false) } catch { crashed = true }
                    TestHooks.crashAt = nil
                    close(src)
                    store = try reopen(store, options: options)
                    let g = try openPath(store, "f")
                    let got = try g.readAll()
                    let label = "\(suite) \(scenario) crash after \(step) (crashed: \(crashed))"
                    XCTAssertTrue(got == old || got == new, label)
                    if crashed && [.journalWritten, .chunksApplied, .headerWritten].contains(step) && scenario != "append" && scenario != "shrink" {
                        XCTAssertEqual(got, new, "past the commit point: \(label)")
                    }
                    if crashed && step == .directWritten { XCTAssertEqual(got, old, "before the commit point: \(label)") }
                    let report = Verifier.run(store: store)
                    XCTAssertTrue(report.isClean, "\(label): \(report.damage)")
                    g.close()
                    store.close()
                }
            }
        }
    }
}
