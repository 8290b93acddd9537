import CLinux
import Glibc
import Lisafs

/// SetStat: modes, owners and times apply to the ciphertext file; the size to
/// the plaintext (the scratch, then a commit).
extension SealedProvider {
    public func setStat(_ node: Node, _ changes: SetStatChanges) -> SetStatResult {
        var result = SetStatResult()
        if changes.mask & StatxMask.mode != 0 {
            do {
                if node.fileType == FileType.symlink { throw Errno.EOPNOTSUPP }
                try withCBytes(Array(String(node.fd).utf8)) { n in
                    try Sys.check { clinux_fchmodat(context.procSelfFD, n, changes.mode & 0o7777) }
                }
            } catch {
                result.fail(StatxMask.mode, Errno.from(error))
            }
        }
        if changes.mask & StatxMask.size != 0 {
            do {
                guard node.fileType == FileType.regular else {
                    throw node.fileType == FileType.directory ? Errno.EISDIR : Errno.EINVAL
                }
                let entry = try acquire(node)
                defer { release(entry) }
                try entry.lock.locked { try entry.setSizeLocked(changes.size) }
            } catch {
                result.fail(StatxMask.size, Errno.fromStore(error))
            }
        }
        let timeBits = changes.mask & (StatxMask.atime | StatxMask.mtime)
        if timeBits != 0 {
            let setA: Int32 = changes.mask & StatxMask.atime != 0 ? 1 : 0
            let setM: Int32 = changes.mask & StatxMask.mtime != 0 ? 1 : 0
            do {
                try Sys.check {
                    clinux_futimens_empty_path(node.fd, setA, changes.atime.sec, changes.atime.nsec,
                                               setM, changes.mtime.sec, changes.mtime.nsec)
                }
                // The scratch's times show through stat while it exists.
                if node.fileType == FileType.regular, let entry = context.registry.peek(node.key) {
                    entry.lock.locked {
                        if case .scratch(let s) = entry.mode {
                            _ = clinux_futimens_empty_path(s.fd, setA, changes.atime.sec, changes.atime.nsec,
                                                           setM, changes.mtime.sec, changes.mtime.nsec)
                        }
                    }
                }
            } catch {
                result.fail(timeBits, Errno.from(error))
            }
        }
        let ownerBits = changes.mask & (StatxMask.uid | StatxMask.gid)
        if ownerBits != 0 {
            let uid = changes.mask & StatxMask.uid != 0 ? changes.uid : UInt32.max
            let gid = changes.mask & StatxMask.gid != 0 ? changes.gid : UInt32.max
            do {
                try Sys.check { clinux_fchown_empty_path(node.fd, uid, gid) }
            } catch {
                result.fail(ownerBits, Errno.from(error))
            }
        }
        return result
    }
}
