/// Message IDs of the lisafs protocol. Values are fixed by gVisor's pkg/lisafs;
/// 32 and 33 exist only in newer gVisor releases.
public enum MID: UInt16, CaseIterable, Sendable {
    case error = 0
    case mount = 1
    case channel = 2
    case fStat = 3
    case setStat = 4
    case walk = 5
    case walkStat = 6
    case openAt = 7
    case openCreateAt = 8
    case close = 9
    case fSync = 10
    case pWrite = 11
    case pRead = 12
    case mkdirAt = 13
    case mknodAt = 14
    case symlinkAt = 15
    case linkAt = 16
    case fStatFS = 17
    case fAllocate = 18
    case readLinkAt = 19
    case flush = 20
    case connect = 21
    case unlinkAt = 22
    case renameAt = 23
    case getdents64 = 24
    case fGetXattr = 25
    case fSetXattr = 26
    case fListXattr = 27
    case fRemoveXattr = 28
    case bindAt = 29
    case listen = 30
    case accept = 31
    case connectWithCreds = 32
    case renameAt2 = 33
}
