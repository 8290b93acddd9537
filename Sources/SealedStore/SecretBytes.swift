import CSodium

/// A fixed-size buffer for key material in `SecretArena` memory: page-locked (mlock, never swapped)
/// where RLIMIT_MEMLOCK allows, excluded from core dumps, zeroed when released, and zeroed for good by
/// `wipeAllForExit()`. Immutable after construction except through `withMutableBytes`; safe to share
/// across threads for reading.
public final class SecretBytes: @unchecked Sendable {
    private let block: SecretArena.Block
    private var pointer: UnsafeMutableRawPointer { block.pointer }
    public let count: Int
    /// Whether the memory is locked (mlock may fail under RLIMIT_MEMLOCK; the key is still zeroed).
    public var isLocked: Bool { block.isLocked }

    public init(count: Int) {
        self.count = count
        block = SecretArena.shared.allocate(byteCount: count)
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

    deinit { SecretArena.shared.release(block) }

    /// Zeroes every secret of the process, including live ones (which read as
    /// zeros afterwards). Only for the end of a process, once nothing will
    /// encrypt or decrypt again (`serve` calls it after its last commit).
    public static func wipeAllForExit() { SecretArena.shared.wipeAll() }

    /// Whether this secret's bytes sit in locked memory right now (tests).
    public var isInLockedMemory: Bool { SecretArena.shared.isLockedMemory(pointer) }

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
