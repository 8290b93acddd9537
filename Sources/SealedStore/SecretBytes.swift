import CSodium

/// A fixed-size buffer for key material: page-locked where the platform allows (`sodium_mlock`),
/// zeroed when released (`sodium_munlock` zeroes before unlocking; `sodium_memzero` otherwise).
/// Immutable after construction except through `withMutableBytes`; safe to share across threads
/// for reading.
public final class SecretBytes: @unchecked Sendable {
    private let pointer: UnsafeMutableRawPointer
    public let count: Int
    /// Whether mlock succeeded (it may fail under RLIMIT_MEMLOCK; the key is still zeroed).
    public let isLocked: Bool

    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        isLocked = count > 0 && sodium_mlock(pointer, count) == 0
    }

    /// Copies `bytes` in and zeroes the caller's array copy this function received.
    public convenience init(copying bytes: [UInt8]) {
        self.init(count: bytes.count)
        var source = bytes
        source.withUnsafeMutableBytes { s in
            if s.count > 0 { pointer.copyMemory(from: s.baseAddress!, byteCount: s.count); sodium_memzero(s.baseAddress!, s.count) }
        }
    }

    /// Takes the bytes and zeroes the caller's array (e.g. a passphrase typed on a terminal).
    public convenience init(consuming bytes: inout [UInt8]) {
        self.init(count: bytes.count)
        bytes.withUnsafeMutableBytes { s in
            if s.count > 0 { pointer.copyMemory(from: s.baseAddress!, byteCount: s.count); sodium_memzero(s.baseAddress!, s.count) }
        }
    }

    public convenience init(copying buffer: UnsafeRawBufferPointer) {
        self.init(count: buffer.count)
        if buffer.count > 0 { pointer.copyMemory(from: buffer.baseAddress!, byteCount: buffer.count) }
    }

    public static func random(count: Int) -> SecretBytes {
        let s = SecretBytes(count: count)
        s.withMutableBytes { Sodium.fillRandom($0) }
        return s
    }

    deinit {
        if isLocked { sodium_munlock(pointer, count) } else { sodium_memzero(pointer, max(count, 1)) }
        pointer.deallocate()
    }

    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    public func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: pointer, count: count))
    }

    /// Constant-time comparison without copying the secret out.
    public func equals(_ other: SecretBytes) -> Bool {
        guard count == other.count else { return false }
        return count == 0 || withBytes { a in other.withBytes { b in sodium_memcmp(a.baseAddress!, b.baseAddress!, count) == 0 } }
    }

    /// Copies out to an array. Only for known-answer tests and for writing a new key file.
    public func exposedCopy() -> [UInt8] { withBytes { Array($0) } }
}

/// Zeroes an array holding transient secret material (e.g. a passphrase read from a file).
func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { if $0.count > 0 { sodium_memzero($0.baseAddress!, $0.count) } }
}

func wipeBytes(_ buffer: UnsafeMutableRawBufferPointer) {
    if buffer.count > 0 { sodium_memzero(buffer.baseAddress!, buffer.count) }
}
