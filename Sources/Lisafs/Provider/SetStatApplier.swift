import CLinux
import Glibc

/// The order and error bookkeeping of SetStat, shared by every provider: each
/// requested attribute group (mode, size, times, owner) is applied on its own,
/// and a failure marks only that group, as gVisor's fsgofer does. Providers
/// supply what differs between them — how to chmod and how to change the size —
/// while times and owners always apply to the node's own FD (O_PATH included).
public struct SetStatApplier {
    /// chmod of the node (permission bits only).
    public var changeMode: (UInt32) throws -> Void
    /// Changes the size of a regular file (callers have checked the file type).
    public var changeSize: (UInt64) throws -> Void
    /// Runs after the node's times were set (a provider may mirror them elsewhere).
    public var timesChanged: (_ setA: Int32, _ setM: Int32) -> Void = { _, _ in }
    /// Maps a thrown error to the errno reported for it.
    public var errno: (Error) -> Errno = { Errno.from($0) }

    public init(changeMode: @escaping (UInt32) throws -> Void, changeSize: @escaping (UInt64) throws -> Void) {
        self.changeMode = changeMode
        self.changeSize = changeSize
    }

    public func apply(_ changes: SetStatChanges, to nodeFD: Int32, fileType: UInt32) -> SetStatResult {
        var result = SetStatResult()
        if changes.mask & StatxMask.mode != 0 {
            do {
                if fileType == FileType.symlink { throw Errno.EOPNOTSUPP } // Linux cannot chmod a symlink
                try changeMode(changes.mode & 0o7777)
            } catch {
                result.fail(StatxMask.mode, errno(error))
            }
        }
        if changes.mask & StatxMask.size != 0 {
            do {
                guard fileType == FileType.regular else {
                    throw fileType == FileType.directory ? Errno.EISDIR : Errno.EINVAL
                }
                guard changes.size <= UInt64(Int64.max) else { throw Errno.EFBIG }
                try changeSize(changes.size)
            } catch {
                result.fail(StatxMask.size, errno(error))
            }
        }
        let timeBits = changes.mask & (StatxMask.atime | StatxMask.mtime)
        if timeBits != 0 {
            let setA: Int32 = changes.mask & StatxMask.atime != 0 ? 1 : 0
            let setM: Int32 = changes.mask & StatxMask.mtime != 0 ? 1 : 0
            do {
                try HostCalls.check {
                    clinux_futimens_empty_path(nodeFD, setA, changes.atime.sec, changes.atime.nsec,
                                               setM, changes.mtime.sec, changes.mtime.nsec)
                }
                timesChanged(setA, setM)
            } catch {
                result.fail(timeBits, Errno.from(error))
            }
        }
        let ownerBits = changes.mask & (StatxMask.uid | StatxMask.gid)
        if ownerBits != 0 {
            let uid = changes.mask & StatxMask.uid != 0 ? changes.uid : UInt32.max
            let gid = changes.mask & StatxMask.gid != 0 ? changes.gid : UInt32.max
            do {
                try HostCalls.check { clinux_fchown_empty_path(nodeFD, uid, gid) }
            } catch {
                result.fail(ownerBits, Errno.from(error))
            }
        }
        return result
    }
}
