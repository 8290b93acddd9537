/// One path component that has passed the server's name checks.
///
/// The only way to make one is `FileName(validating:)`, so a provider method
/// that takes a `FileName` can rely on it being a single, harmless component:
/// non-empty, at most 255 bytes, no '/', no NUL, and neither "." nor "..".
/// Providers may therefore hand it to `*at()` calls relative to a directory FD
/// without further checks.
public struct FileName: Hashable, Sendable, CustomStringConvertible {
    /// Linux NAME_MAX.
    public static let maxLength = 255

    public let bytes: [UInt8]

    /// Validates a name received from the client; throws EINVAL (or
    /// ENAMETOOLONG for an over-long one) otherwise.
    public init(validating bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { throw Errno.EINVAL }
        guard bytes.count <= FileName.maxLength else { throw Errno.ENAMETOOLONG }
        if bytes == [0x2E] || bytes == [0x2E, 0x2E] { throw Errno.EINVAL }
        for byte in bytes where byte == 0x2F || byte == 0 { throw Errno.EINVAL }
        self.bytes = bytes
    }

    public init(validating string: String) throws {
        try self.init(validating: Array(string.utf8))
    }

    /// Calls `body` with the name as a NUL-terminated C string.
    @discardableResult
    public func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        // A temporary (stack for short names) buffer: no heap copy per path call.
        try withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = CChar(bitPattern: byte) }
            buffer[bytes.count] = 0
            return try body(UnsafePointer(buffer.baseAddress!))
        }
    }

    /// Lossy rendering for logs.
    public var description: String { String(decoding: bytes, as: UTF8.self) }
}
