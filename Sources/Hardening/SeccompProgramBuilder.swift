/// Compiles an allowlist plus argument rules into a seccomp BPF program:
///
///     check arch (and reject x32 numbers)    → killProcess if foreign
///     for each syscall with rules:           nr == N ? try rules, else violation
///     for each plainly allowed syscall:      nr == N ? allow
///     violation action
///
/// Every jump is local (to the next block), so reach never depends on the
/// length of the allowlist. Syscalls without argument checks have a constant
/// verdict, which the kernel's seccomp action cache (5.11+) turns into a
/// bitmap lookup, so the linear scan is not paid for them.
struct SeccompProgramBuilder {
    /// BPF_MAXINSNS.
    static let maximumLength = 4096

    let architecture: UInt32
    let x32Bit: UInt32

    func build(allowed: [UInt32], rules: [(nr: UInt32, rules: [SyscallRule])],
               violation: SeccompAction) throws -> [BPFInstruction] {
        var program: [BPFInstruction] = [
            .load(offset: SeccompData.arch),
            .jumpIfEqual(architecture, ifTrue: 1),
            .ret(.killProcess),
            .load(offset: SeccompData.nr),
        ]
        if x32Bit != 0 {
            program += [.jumpIfGreaterOrEqual(x32Bit, ifFalse: 1), .ret(.killProcess)]
        }
        for entry in rules {
            program += try ruleBlock(nr: entry.nr, rules: entry.rules, violation: violation)
        }
        for nr in allowed {
            program += [.jumpIfEqual(nr, ifFalse: 1), .ret(.allow)]
        }
        program.append(.ret(violation))
        guard program.count <= Self.maximumLength else {
            throw HardeningError.programTooLarge("\(program.count) instructions, limit \(Self.maximumLength)")
        }
        return program
    }

    /// `nr == N ? (rules…, violation) : next block`. The body ends in returns
    /// on every path, so A still holds nr when the next block is reached.
    private func ruleBlock(nr: UInt32, rules: [SyscallRule], violation: SeccompAction) throws -> [BPFInstruction] {
        var body: [BPFInstruction] = []
        for rule in rules { body += try ruleCode(rule) }
        body.append(.ret(violation))
        guard body.count <= Int(UInt8.max) else {
            throw HardeningError.programTooLarge("rules for syscall \(nr) need \(body.count) instructions, a jump reaches 255")
        }
        return [.jumpIfEqual(nr, ifFalse: UInt8(body.count))] + body
    }

    /// Conditions that all jump past the rule's return when they fail.
    private func ruleCode(_ rule: SyscallRule) throws -> [BPFInstruction] {
        var checks: [[BPFInstruction]] = []
        for condition in rule.conditions {
            guard (0...5).contains(condition.index) else { throw HardeningError.invalidArgumentIndex(condition.index) }
            let halves: [(offset: UInt32, mask: UInt32, value: UInt32)] = [
                (SeccompData.argumentLow(condition.index), UInt32(truncatingIfNeeded: condition.mask),
                 UInt32(truncatingIfNeeded: condition.value)),
                (SeccompData.argumentHigh(condition.index), UInt32(truncatingIfNeeded: condition.mask >> 32),
                 UInt32(truncatingIfNeeded: condition.value >> 32)),
            ]
            for half in halves where half.mask != 0 {
                var check: [BPFInstruction] = [.load(offset: half.offset)]
                if half.mask != .max { check.append(.and(half.mask)) }
                check.append(.jumpIfEqual(half.value)) // jf patched below
                checks.append(check)
            }
        }
        // Patch each failing jump to land just after the rule's return.
        var code: [BPFInstruction] = []
        let total = checks.reduce(0) { $0 + $1.count } + 1
        for check in checks {
            code += check
            let remaining = total - code.count // instructions after this jump, incl. the return
            guard remaining <= Int(UInt8.max) else {
                throw HardeningError.programTooLarge("rule for \(rule.syscall) has too many conditions")
            }
            code[code.count - 1].jf = UInt8(remaining)
        }
        code.append(.ret(rule.action))
        return code
    }
}
