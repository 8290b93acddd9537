/// A file's random 16-byte identity (Keys/README.md §4). Names its sidecar and journal.
public struct FileID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public init?(hex: String) {
        guard let b = decodeHex(hex), b.count == 16 else { return nil }
        bytes = b
    }

    public static func random() -> FileID { FileID(bytes: Sodium.randomBytes(16))! }

    public static let zero = FileID(bytes: [UInt8](repeating: 0, count: 16))!

    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
    public var hex: String { encodeHex(bytes) }
    public var description: String { hex }
}

func encodeHex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8](); out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

func decodeHex(_ s: String) -> [UInt8]? {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
    var out = [UInt8](); out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
        out.append(h << 4 | l); i += 2
    }
    return out
}
