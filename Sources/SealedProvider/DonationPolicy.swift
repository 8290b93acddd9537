import Lisafs

/// Which opens of a file with a scratch get the scratch's FD donated.
///
/// gVisor's sentry fsyncs a donated FD itself instead of sending FSync, so with
/// writable donation an application's fsync only reaches the scratch (RAM): its
/// data is sealed at the next Flush, Close or periodic commit, not before fsync
/// returns. `readOnly` donates only to read-only opens; writable opens then go
/// through the sentry's page cache and PWrite RPCs, and an application's fsync
/// arrives as FSync and is answered only once the data is committed durably.
/// Both open kinds still share one scratch, so they always see the same bytes.
public enum DonationPolicy: String, Sendable, CaseIterable {
    /// Every open is donated: the fastest writes; fsync is not a commit point.
    case all
    /// Only read-only opens are donated: fsync is durable, writes cost RPCs.
    case readOnly = "read-only"

    func donates(_ flags: OpenFlags) -> Bool {
        switch self {
        case .all: return true
        case .readOnly: return !flags.isWritable && !flags.truncates
        }
    }
}
