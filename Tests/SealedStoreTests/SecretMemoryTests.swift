import Foundation
import XCTest
@testable import SealedStore

/// Key memory (SecretArena): locked in RAM, out of core dumps, zeroed on
/// release and by the exit wipe — and a released neighbour never unlocks a
/// live key's page (which per-secret mlock/munlock on malloc memory did).
final class SecretMemoryTests: XCTestCase {
    /// The /proc/self/smaps entry of the mapping holding `address`: its
    /// "Locked:" kB and its VmFlags.
    static func mapping(of address: UInt) -> (lockedKB: Int, flags: [String])? {
        // Read in a loop: procfs files report size 0 and String(contentsOfFile:) stops early.
        let fd = open("/proc/self/smaps", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        var inside = false
        var locked = -1
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = words.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = bounds.count == 2 && address >= bounds[0] && address < bounds[1]
                continue
            }
            guard inside else { continue }
            if words.first == "Locked:", words.count >= 2 { locked = Int(words[1]) ?? -1 }
            if words.first == "VmFlags:" { return (locked, words.dropFirst().map(String.init)) }
        }
        return nil
    }

    static func address(of secret: SecretBytes) -> UInt {
        secret.withBytes { UInt(bitPattern: $0.baseAddress!) }
    }

    func testKeyPagesAreLockedAndNotDumpedEvenAfterNeighboursAreReleased() throws {
        let master = SecretBytes.random(count: 32)
        XCTAssertTrue(master.isLocked, "mlock failed (RLIMIT_MEMLOCK \(String(describing: try? String(contentsOfFile: "/proc/self/limits"))))")
        // Neighbours come and go, as per-file keys do.
        for _ in 0..<3 {
            var neighbours: [SecretBytes] = []
            for _ in 0..<200 { neighbours.append(SecretBytes.random(count: 32)) }
            neighbours.removeAll()
        }
        let big = SecretBytes.random(count: 10_000) // its own pages
        for secret in [master, big] {
            let mapping = try XCTUnwrap(Self.mapping(of: Self.address(of: secret)), "no mapping in smaps")
            XCTAssertTrue(secret.isInLockedMemory)
            XCTAssertTrue(mapping.flags.contains("lo"), "VM_LOCKED missing: \(mapping.flags)")
            XCTAssertGreaterThan(mapping.lockedKB, 0)
            XCTAssertTrue(mapping.flags.contains("dd"), "VM_DONTDUMP missing: \(mapping.flags)")
        }
    }

    func testReleasedSecretsAreZeroed() throws {
        let arena = SecretArena()
        for size in [32, 64, 5000] {
            let block = arena.allocate(byteCount: size)
            let bytes = UnsafeMutableRawBufferPointer(start: block.pointer, count: size)
            for i in 0..<size { bytes[i] = 0xA5 }
            arena.release(block)
            if size <= SecretArena.slotSize {
                // Slots stay mapped: the released one reads as zeros.
                XCTAssertTrue(bytes.allSatisfy { $0 == 0 }, "a released \(size)-byte secret was not zeroed")
                // And it comes back zeroed.
                let again = arena.allocate(byteCount: size)
                XCTAssertTrue(UnsafeRawBufferPointer(start: again.pointer, count: size).allSatisfy { $0 == 0 })
                arena.release(again)
            }
        }
    }

    func testExitWipeZeroesLiveSecrets() throws {
        let arena = SecretArena() // not the shared one: other tests' keys stay intact
        let small = arena.allocate(byteCount: 32)
        let large = arena.allocate(byteCount: 9000)
        for block in [small, large] { memset(block.pointer, 0x5A, block.capacity) }
        arena.wipeAll()
        for block in [small, large] {
            XCTAssertTrue(UnsafeRawBufferPointer(start: block.pointer, count: block.capacity).allSatisfy { $0 == 0 })
        }
        arena.release(small)
        arena.release(large)
    }
}
