import CLinux

// Conversions every provider needs between the kernel's types and the wire's.

extension Statx {
    /// The wire form of the kernel's statx(2) result.
    public init(_ raw: clinux_statx) {
        self.init(
            mask: raw.mask, blksize: raw.blksize, attributes: raw.attributes, nlink: raw.nlink,
            uid: raw.uid, gid: raw.gid, mode: raw.mode, ino: raw.ino, size: raw.size, blocks: raw.blocks,
            attributesMask: raw.attributes_mask,
            atime: StatxTimestamp(sec: raw.atime_sec, nsec: raw.atime_nsec),
            btime: StatxTimestamp(sec: raw.btime_sec, nsec: raw.btime_nsec),
            ctime: StatxTimestamp(sec: raw.ctime_sec, nsec: raw.ctime_nsec),
            mtime: StatxTimestamp(sec: raw.mtime_sec, nsec: raw.mtime_nsec),
            rdevMajor: raw.rdev_major, rdevMinor: raw.rdev_minor,
            devMajor: raw.dev_major, devMinor: raw.dev_minor)
    }
}

/// A NUL-terminated copy of raw bytes for C calls (callers have checked that
/// `bytes` holds no NUL).
@discardableResult
public func withCBytes<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
    var terminated = bytes
    terminated.append(0)
    return try terminated.withUnsafeBufferPointer { buffer in
        try UnsafeRawPointer(buffer.baseAddress!).withMemoryRebound(to: CChar.self, capacity: buffer.count) { try body($0) }
    }
}
