@testable import Hardening

/// Runs a seccomp program the way the kernel would, for the opcodes the
/// builder emits, so filter logic can be checked without installing it.
/// Unknown opcodes, out-of-range loads and running off the end are failures.
struct BPFInterpreter {
    enum Failure: Error { case badOpcode(UInt16), badLoad(UInt32), fellOffEnd, jumpOutOfRange }

    let program: [BPFInstruction]

    /// seccomp_data: nr, arch, instruction pointer, six 64-bit arguments.
    func run(nr: Int32, arch: UInt32, args: [UInt64] = []) throws -> UInt32 {
        var data = [UInt8](repeating: 0, count: 64)
        func put32(_ v: UInt32, at o: Int) { for i in 0..<4 { data[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        put32(UInt32(bitPattern: nr), at: 0)
        put32(arch, at: 4)
        for (i, a) in args.prefix(6).enumerated() {
            put32(UInt32(truncatingIfNeeded: a), at: 16 + 8 * i)
            put32(UInt32(truncatingIfNeeded: a >> 32), at: 20 + 8 * i)
        }
        var a: UInt32 = 0
        var pc = 0
        while pc < program.count {
            let insn = program[pc]
            pc += 1
            switch insn.code {
            case BPFInstruction.loadWordAbsolute:
                let o = Int(insn.k)
                guard o % 4 == 0, o + 4 <= data.count else { throw Failure.badLoad(insn.k) }
                a = (0..<4).reduce(0) { $0 | UInt32(data[o + $1]) << (8 * UInt32($1)) }
            case BPFInstruction.andConstant:
                a &= insn.k
            case BPFInstruction.jumpIfEqual:
                pc += Int(a == insn.k ? insn.jt : insn.jf)
            case BPFInstruction.jumpIfGreaterOrEqual:
                pc += Int(a >= insn.k ? insn.jt : insn.jf)
            case BPFInstruction.returnConstant:
                return insn.k
            default:
                throw Failure.badOpcode(insn.code)
            }
            if pc > program.count { throw Failure.jumpOutOfRange }
        }
        throw Failure.fellOffEnd
    }
}
