/// One classic BPF instruction (struct sock_filter). Only the few opcodes a
/// seccomp allowlist needs are built here.
public struct BPFInstruction: Hashable, Sendable, CustomStringConvertible {
    public var code: UInt16
    public var jt: UInt8
    public var jf: UInt8
    public var k: UInt32

    public init(code: UInt16, jt: UInt8 = 0, jf: UInt8 = 0, k: UInt32) {
        self.code = code
        self.jt = jt
        self.jf = jf
        self.k = k
    }

    // Opcodes (linux/bpf_common.h).
    public static let loadWordAbsolute: UInt16 = 0x20 // BPF_LD | BPF_W | BPF_ABS
    public static let andConstant: UInt16 = 0x54 // BPF_ALU | BPF_AND | BPF_K
    public static let jumpIfEqual: UInt16 = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
    public static let jumpIfGreaterOrEqual: UInt16 = 0x35 // BPF_JMP | BPF_JGE | BPF_K
    public static let returnConstant: UInt16 = 0x06 // BPF_RET | BPF_K

    static func load(offset: UInt32) -> BPFInstruction { .init(code: loadWordAbsolute, k: offset) }
    static func and(_ mask: UInt32) -> BPFInstruction { .init(code: andConstant, k: mask) }
    static func jumpIfEqual(_ value: UInt32, ifTrue jt: UInt8 = 0, ifFalse jf: UInt8 = 0) -> BPFInstruction {
        .init(code: jumpIfEqual, jt: jt, jf: jf, k: value)
    }
    static func jumpIfGreaterOrEqual(_ value: UInt32, ifTrue jt: UInt8 = 0, ifFalse jf: UInt8 = 0) -> BPFInstruction {
        .init(code: jumpIfGreaterOrEqual, jt: jt, jf: jf, k: value)
    }
    static func ret(_ action: SeccompAction) -> BPFInstruction { .init(code: returnConstant, k: action.returnValue) }

    public var description: String {
        switch code {
        case Self.loadWordAbsolute: return "ld [\(k)]"
        case Self.andConstant: return "and #0x\(String(k, radix: 16))"
        case Self.jumpIfEqual: return "jeq #0x\(String(k, radix: 16)) jt +\(jt) jf +\(jf)"
        case Self.jumpIfGreaterOrEqual: return "jge #0x\(String(k, radix: 16)) jt +\(jt) jf +\(jf)"
        case Self.returnConstant: return "ret #0x\(String(k, radix: 16))"
        default: return "op 0x\(String(code, radix: 16)) \(jt) \(jf) \(k)"
        }
    }
}

/// Offsets into struct seccomp_data, the buffer a seccomp program reads.
enum SeccompData {
    static let nr: UInt32 = 0
    static let arch: UInt32 = 4
    /// Low and high 32-bit halves of argument `index` (little-endian layout;
    /// both supported architectures are little-endian).
    static func argumentLow(_ index: Int) -> UInt32 { 16 + 8 * UInt32(index) }
    static func argumentHigh(_ index: Int) -> UInt32 { 16 + 8 * UInt32(index) + 4 }
}
