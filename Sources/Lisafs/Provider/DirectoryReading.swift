import CLinux
import Glibc

/// The linux_dirent64 records in the first `count` bytes of a getdents64 buffer,
/// each bounds-checked (a record that claims to run past `count` ends the walk).
public struct LinuxDirents: Sequence, IteratorProtocol {
    /// d_ino 8, d_off 8, d_reclen 2, d_type 1, then the NUL-terminated name.
    private static let headerSize = 19
    private let buffer: [UInt8]
    private let count: Int
    private var position = 0

    public init(_ buffer: [UInt8], count: Int) {
        self.buffer = buffer
        self.count = Swift.max(0, Swift.min(count, buffer.count))
    }

    public mutating func next() -> DirectoryEntry? {
        let h = Self.headerSize
        guard position + h <= count else { return nil }
        return buffer.withUnsafeBytes { raw -> DirectoryEntry? in
            let length = Int(raw.loadUnaligned(fromByteOffset: position + 16, as: UInt16.self))
            guard length >= h, position + length <= count else { return nil }
            let entry = DirectoryEntry(
                name: Array(raw[(position + h)..<(position + length)].prefix { $0 != 0 }),
                ino: raw.loadUnaligned(fromByteOffset: position, as: UInt64.self),
                offset: raw.loadUnaligned(fromByteOffset: position + 8, as: UInt64.self),
                type: raw[position + 18])
            position += length
            return entry
        }
    }
}

extension HostCalls {
    /// Reads directory records from `fd` with getdents64 buffers no larger than
    /// the remaining `byteBudget`, so that every record the kernel hands out is
    /// returned and the directory position never skips one. `adjust` fills in
    /// what the records lack (the device) and returns false to drop an entry.
    public static func readDirectory(_ fd: Int32, byteBudget: Int, restart: Bool,
                                     _ adjust: (inout DirectoryEntry) -> Bool) throws -> [DirectoryEntry] {
        if restart { try check { lseek(fd, 0, SEEK_SET) } }
        var entries: [DirectoryEntry] = []
        var used = 0
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while used < byteBudget {
            let size = min(buffer.count, byteBudget - used)
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { raw in try check { clinux_getdents64(fd, raw.baseAddress, size) } }
            } catch let error as Errno where error == .EINVAL {
                break   // the next record does not fit the remaining budget
            }
            if n == 0 { break }
            used += n
            for var entry in LinuxDirents(buffer, count: n) {
                if adjust(&entry) { entries.append(entry) }
            }
        }
        return entries
    }
}
