/// A test on one 64-bit syscall argument: `(argument & mask) == value`.
/// Both halves are compared, so an int argument with garbage in its upper
/// 32 bits does not match (the filter fails closed).
public struct ArgumentCondition: Hashable, Sendable {
    /// Argument position, 0...5.
    public let index: Int
    public let mask: UInt64
    public let value: UInt64

    public init(index: Int, mask: UInt64, value: UInt64) {
        self.index = index
        self.mask = mask
        self.value = value & mask
    }

    public static func equals(_ index: Int, _ value: UInt64) -> ArgumentCondition {
        ArgumentCondition(index: index, mask: .max, value: value)
    }

    /// For C `int` arguments: negative values are sign-extended to 64 bits by the ABI.
    public static func equals(_ index: Int, int value: Int32) -> ArgumentCondition {
        .equals(index, UInt64(bitPattern: Int64(value)))
    }

    public static func hasAllBits(_ index: Int, _ bits: UInt64) -> ArgumentCondition {
        ArgumentCondition(index: index, mask: bits, value: bits)
    }

    public static func hasNoBits(_ index: Int, _ bits: UInt64) -> ArgumentCondition {
        ArgumentCondition(index: index, mask: bits, value: 0)
    }
}

/// "If `syscall` is called and all `conditions` hold, answer with `action`."
/// Rules for the same syscall are tried in order; if none matches, the
/// filter's violation action applies.
public struct SyscallRule: Hashable, Sendable {
    public let syscall: Syscall
    public let conditions: [ArgumentCondition]
    public let action: SeccompAction

    public init(_ syscall: Syscall, when conditions: [ArgumentCondition] = [], action: SeccompAction = .allow) {
        self.syscall = syscall
        self.conditions = conditions
        self.action = action
    }

    /// Allows `syscall` only when argument `index` is one of `values`
    /// (sign-extended C ints, as the ABI passes them).
    public static func allow(_ syscall: Syscall, argument index: Int, oneOf values: [Int32]) -> [SyscallRule] {
        values.map { SyscallRule(syscall, when: [.equals(index, int: $0)]) }
    }

    /// Answers `syscall` with `action` whatever its arguments.
    public static func respond(to syscall: Syscall, with action: SeccompAction) -> SyscallRule {
        SyscallRule(syscall, action: action)
    }
}
