/// Linux capabilities, numbered as in linux/capability.h.
public enum Capability: Int32, CaseIterable, Sendable, Comparable {
    case chown = 0, dacOverride, dacReadSearch, fowner, fsetid, kill, setgid, setuid, setpcap,
         linuxImmutable, netBindService, netBroadcast, netAdmin, netRaw, ipcLock, ipcOwner,
         sysModule, sysRawio, sysChroot, sysPtrace, sysPacct, sysAdmin, sysBoot, sysNice,
         sysResource, sysTime, sysTtyConfig, mknod, lease, auditWrite, auditControl, setfcap,
         macOverride, macAdmin, syslog, wakeAlarm, blockSuspend, auditRead, perfmon, bpf,
         checkpointRestore

    public var bit: UInt64 { 1 << UInt64(rawValue) }

    public static func < (a: Capability, b: Capability) -> Bool { a.rawValue < b.rawValue }

    /// What a gofer serving files of any owner needs (the same set runsc's
    /// gofer keeps, minus CAP_SYS_CHROOT, which only matters if it chroots
    /// itself — add it back for that).
    public static let goferDefaults: Set<Capability> = [.chown, .dacOverride, .dacReadSearch, .fowner, .fsetid]
}

/// A thread's capability sets as bit masks (bit n = capability n).
public struct CapabilityState: Equatable, Sendable, CustomStringConvertible {
    public var effective: UInt64
    public var permitted: UInt64
    public var inheritable: UInt64
    public var bounding: UInt64

    public var description: String {
        func hex(_ v: UInt64) -> String { String(v, radix: 16) }
        return "CapEff=\(hex(effective)) CapPrm=\(hex(permitted)) CapInh=\(hex(inheritable)) CapBnd=\(hex(bounding))"
    }

    public static func mask(_ capabilities: some Sequence<Capability>) -> UInt64 {
        capabilities.reduce(0) { $0 | $1.bit }
    }
}
