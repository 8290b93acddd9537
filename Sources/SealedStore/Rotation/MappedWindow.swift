#if canImport(Glibc)
import Glibc
#endif

/// A mapping of one segment of a file at a time. Read-only on the old file of a move, so chunks
/// are decrypted straight out of the page cache instead of being copied into a buffer first (the
/// copy cost a tenth of a move's CPU); writable on a new file on tmpfs whose every page already
/// exists (a spare inode, `SpareInodes.take`), so chunks are sealed straight into the page cache
/// instead of into a buffer that `pwrite` then copies (BENCHMARKS.md, issue 6). Nil (mmap refused, or
/// the range beyond the file): the caller uses pread/pwrite. The store lock keeps every other
/// writer away, so neither file changes length under its mapping, and a writable mapping is only
/// made over allocated pages: writing through it cannot fault for space (SIGBUS), a full file
/// system was ENOSPC from `fallocate` before.
final class MappedWindow {
    private let fd: Int32
    private let fileLength: UInt64
    private let protection: Int32
    private var base: UnsafeMutableRawPointer? = nil
    private var length = 0
    private static let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
    /// Below this a pread/pwrite is cheaper than mmap + munmap (which also interrupts the other
    /// core to flush its TLB).
    static let minimumBytes = 256 << 10

    init(fd: Int32, fileLength: UInt64, writable: Bool = false) {
        self.fd = fd; self.fileLength = fileLength
        protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
    }

    /// Bytes `[offset, offset + count)` of the file, valid until the next call.
    func window(offset: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        map(offset: offset, count: count).map { UnsafeRawBufferPointer($0) }
    }

    /// Writable bytes `[offset, offset + count)` (a window made `writable`), valid until the next call.
    func writableWindow(offset: UInt64, count: Int) -> UnsafeMutableRawBufferPointer? {
        protection & PROT_WRITE != 0 ? map(offset: offset, count: count) : nil
    }

    private func map(offset: UInt64, count: Int) -> UnsafeMutableRawBufferPointer? {
        unmap()
        guard count > 0, offset + UInt64(count) <= fileLength else { return nil }
        let start = offset / MappedWindow.page * MappedWindow.page
        let span = Int(offset - start) + count
        guard let p = mmap(nil, span, protection, MAP_SHARED | MAP_POPULATE, fd, off_t(start)), p != MAP_FAILED else { return nil }
        base = p; length = span
        return UnsafeMutableRawBufferPointer(start: p + Int(offset - start), count: count)
    }

    /// Unmapping a writable window marks its pages dirty: `syncfs` writes them like pwrite's.
    private func unmap() {
        if let b = base { munmap(b, length); base = nil }
    }

    deinit { unmap() }
}

/// One whole-file shared mapping, readable and writable, that outlives a move: it is made to read
/// the old file of a move on tmpfs and, when that old inode becomes a spare, the next move seals
/// its chunks into the same pages through it — one populate and one unmap per inode instead of
/// two of each (mapping work was ≈ 20 % of a move's CPU on tmpfs; BENCHMARKS.md, issue 6).
/// Only the rotation worker that owns the move or spare touches it; nothing writes through it
/// while the inode is a data file, and reading through it changes nothing there: tmpfs has no
/// write notification, so the PTEs are writable from the start and no fault (no timestamp
/// update, no dirtying) happens unless a byte is stored.
final class InodeMapping {
    let base: UnsafeMutableRawPointer
    /// Bytes mapped (the inode's length when mapped).
    let length: Int
    /// Whole files up to this size are mapped at once; larger ones go through `MappedWindow`.
    static let maximumBytes: UInt64 = 64 << 20

    init?(fd: Int32, length: UInt64) {
        guard length > 0, length <= InodeMapping.maximumBytes,
              let p = mmap(nil, Int(length), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0), p != MAP_FAILED else { return nil }
        base = p
        self.length = Int(length)
    }

    func bytes(offset: UInt64, count: Int) -> UnsafeMutableRawBufferPointer {
        precondition(offset + UInt64(count) <= UInt64(length), "outside the mapping")
        return UnsafeMutableRawBufferPointer(start: base + Int(offset), count: count)
    }

    deinit { munmap(base, length) }
}
