import CLinux
import Logging

/// A seccomp allowlist: syscalls in `allowed` run, syscalls with `rules` run
/// (or get the rule's action) when a rule's argument conditions hold, and
/// everything else gets `violationAction`. Syscalls from a foreign ABI (i386
/// via int 0x80, x32) always kill the process.
///
///     try SeccompFilter(allowing: SeccompFilter.goferAllowlist,
///                       rules: SeccompFilter.goferRules()).install()
public struct SeccompFilter: Sendable {
    public let allowed: [Syscall]
    public let rules: [SyscallRule]
    public let violationAction: SeccompAction

    public init(allowing allowed: [Syscall], rules: [SyscallRule] = [],
                action onViolation: SeccompAction = .killProcess) {
        var seen = Set<Syscall>()
        // A syscall with rules is decided by its rules alone; listing it as
        // plainly allowed as well would be dead code in the program.
        let ruled = Set(rules.map(\.syscall))
        self.allowed = allowed.filter { !ruled.contains($0) && seen.insert($0).inserted }
        self.rules = rules
        self.violationAction = onViolation
    }

    /// Names in `allowed` or `rules` this architecture does not have; they are
    /// left out of the program (e.g. `open`, `poll`, `epoll_wait` on aarch64).
    public var unavailableSyscalls: [Syscall] {
        var seen = Set<Syscall>()
        return (allowed + rules.map(\.syscall)).filter { $0.number == nil && seen.insert($0).inserted }
    }

    /// The compiled classic BPF program for this architecture.
    public func program() throws -> [BPFInstruction] {
        let arch = clinux_audit_arch()
        guard arch != 0 else { throw HardeningError.unsupportedArchitecture }
        var ruleBlocks: [(nr: UInt32, rules: [SyscallRule])] = []
        for rule in rules {
            guard let nr = rule.syscall.number else { continue }
            if let i = ruleBlocks.firstIndex(where: { $0.nr == UInt32(nr) }) {
                ruleBlocks[i].rules.append(rule)
            } else {
                ruleBlocks.append((UInt32(nr), [rule]))
            }
        }
        let plain = allowed.compactMap(\.number).map { UInt32($0) }
        let builder = SeccompProgramBuilder(architecture: arch, x32Bit: clinux_x32_syscall_bit())
        return try builder.build(allowed: plain, rules: ruleBlocks, violation: violationAction)
    }

    /// Sets no_new_privs and installs the filter. With `allThreads` (the
    /// default) every existing thread of the process gets it too
    /// (SECCOMP_FILTER_FLAG_TSYNC); threads created later inherit it anyway.
    /// Irreversible: filters can only be added, never removed.
    public func install(allThreads: Bool = true, logger: Logger? = nil) throws {
        let program = try program()
        let cProgram = program.map { clinux_bpf_insn(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
        let result = cProgram.withUnsafeBufferPointer {
            clinux_seccomp_install($0.baseAddress, UInt16($0.count), allThreads ? 1 : 0)
        }
        if result > 0 { throw HardeningError.threadNotSynchronised(tid: result) }
        try check("seccomp(SECCOMP_SET_MODE_FILTER)", result)
        logger?.info("seccomp filter installed", metadata: [
            "instructions": "\(program.count)",
            "allowed": "\(allowed.count)",
            "rules": "\(rules.count)",
            "unavailable": "\(unavailableSyscalls.map(\.name).joined(separator: ","))",
        ])
    }

    /// For finding missing syscalls: with `action: .trap`, a violation prints
    /// "seccomp: blocked syscall NAME (NR)" to stderr and exits with status
    /// 159. Install before the filter (rt_sigaction may be filtered after).
    public static func installViolationReporter() throws {
        try check("sigaction(SIGSYS)", clinux_install_sigsys_reporter())
    }

    /// True if a seccomp filter is active on the calling thread.
    public static var isActiveOnCurrentThread: Bool { clinux_seccomp_mode() > 0 }
}
