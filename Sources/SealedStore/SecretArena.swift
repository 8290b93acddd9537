#if canImport(Glibc)
import Glibc
#endif
import CSodium

/// Where `SecretBytes` live: anonymous pages of their own, locked in RAM
/// (mlock: never swapped) and left out of core dumps (MADV_DONTDUMP), zeroed
/// whenever a secret is released.
///
/// Why not malloc plus mlock per secret: mlock works on whole pages and is not
/// counted, so freeing one small secret (munlock) unlocked the page of every
/// other secret sharing it — the master key's page among them — and heap pages
/// also hold ordinary data. Here small secrets share slabs that stay locked
/// for the life of the process, and large ones get pages of their own.
///
/// Locked memory counts against RLIMIT_MEMLOCK (the gofer drops CAP_IPC_LOCK);
/// when mlock fails the pages are still used, zeroed and kept out of dumps,
/// and `SecretBytes.isLocked` says so.
final class SecretArena: @unchecked Sendable {
    static let shared = SecretArena()

    /// Secrets up to this size share slabs (keys are 32 bytes).
    static let slotSize = 64
    static let slabPages = 16

    struct Block {
        let pointer: UnsafeMutableRawPointer
        let capacity: Int
        let isLocked: Bool
    }

    private struct Region {
        let length: Int
        let isLocked: Bool
    }

    private var mutex = pthread_mutex_t()
    private let pageSize: Int
    /// Free slab slots (zeroed), by address.
    private var freeSlots: [UnsafeMutableRawPointer] = []
    /// Every slab and large block, by base address, for `wipeAll`.
    private var slabs: [UnsafeMutableRawPointer: Region] = [:]
    private var large: [UnsafeMutableRawPointer: Region] = [:]

    init() {
        pthread_mutex_init(&mutex, nil)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        pageSize = page > 0 ? page : 4096
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    /// Zeroed memory for `byteCount` bytes of secret.
    func allocate(byteCount: Int) -> Block {
        let size = max(byteCount, 1)
        if size <= Self.slotSize {
            return locked {
                if freeSlots.isEmpty { addSlabLocked() }
                guard let slot = freeSlots.popLast() else { return fallback(size) }
                let locked = slabs[slabBase(of: slot)]?.isLocked ?? false
                return Block(pointer: slot, capacity: Self.slotSize, isLocked: locked)
            }
        }
        let length = (size + pageSize - 1) / pageSize * pageSize
        guard let base = mapPages(length) else { return fallback(size) }
        let isLocked = mlock(base, length) == 0
        locked { large[base] = Region(length: length, isLocked: isLocked) }
        return Block(pointer: base, capacity: length, isLocked: isLocked)
    }

    /// Zeroes the block and returns it (slab slots stay mapped and locked).
    func release(_ block: Block) {
        sodium_memzero(block.pointer, block.capacity)
        let wasLarge: Region? = locked {
            if let region = large.removeValue(forKey: block.pointer) { return region }
            if slabs[slabBase(of: block.pointer)] != nil {
                freeSlots.append(block.pointer)
                return nil
            }
            return Region(length: -1, isLocked: false) // heap fallback
        }
        guard let wasLarge else { return }
        if wasLarge.length < 0 {
            block.pointer.deallocate()
        } else {
            if wasLarge.isLocked { munlock(block.pointer, wasLarge.length) }
            munmap(block.pointer, wasLarge.length)
        }
    }

    /// Zeroes every secret this process holds, live or free. For the very end
    /// of a process, once nothing will encrypt or decrypt again: live
    /// `SecretBytes` read as zeros afterwards.
    func wipeAll() {
        locked {
            for (base, region) in slabs { sodium_memzero(base, region.length) }
            for (base, region) in large { sodium_memzero(base, region.length) }
        }
    }

    /// Whether the page holding `pointer` is one of the arena's locked pages.
    func isLockedMemory(_ pointer: UnsafeRawPointer) -> Bool {
        let address = UnsafeMutableRawPointer(mutating: pointer)
        return locked {
            if let region = slabs[slabBase(of: address)] { return region.isLocked }
            for (base, region) in large where address >= base && address < base + region.length { return region.isLocked }
            return false
        }
    }

    // MARK: Internals

    private var slabLength: Int { Self.slabPages * pageSize }

    /// Slabs are aligned to their length, so a slot's slab is found by masking.
    private func slabBase(of pointer: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        let address = UInt(bitPattern: pointer)
        return UnsafeMutableRawPointer(bitPattern: address & ~UInt(slabLength - 1)) ?? pointer
    }

    private func addSlabLocked() {
        // Map twice the length and trim, to get an aligned slab.
        let length = slabLength
        guard let raw = mapPages(2 * length) else { return }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(length - 1)) & ~UInt(length - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        let tail = length - head
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + UInt(length))!, tail) }
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        let isLocked = mlock(base, length) == 0
        slabs[base] = Region(length: length, isLocked: isLocked)
        for i in stride(from: length / Self.slotSize - 1, through: 0, by: -1) {
            freeSlots.append(base + i * Self.slotSize)
        }
    }

    /// Anonymous private pages, excluded from core dumps.
    private func mapPages(_ length: Int) -> UnsafeMutableRawPointer? {
        let raw = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let raw, raw != MAP_FAILED else { return nil }
        _ = madvise(raw, length, 16) // MADV_DONTDUMP
        return raw
    }

    /// Out of address space: ordinary heap memory, still zeroed on release.
    private func fallback(_ size: Int) -> Block {
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        return Block(pointer: pointer, capacity: size, isLocked: false)
    }
}
