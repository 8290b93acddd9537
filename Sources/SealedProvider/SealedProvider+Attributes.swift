import CLinux
import Glibc
import Lisafs

/// SetStat: modes, owners and times apply to the ciphertext file; the size to
/// the plaintext (the scratch, then a commit).
extension SealedProvider {
    public func setStat(_ node: Node, _ changes: SetStatChanges) -> SetStatResult {
        var applier = SetStatApplier(
            changeMode: { [context] mode in
                try withCBytes(Array(String(node.fd).utf8)) { n in
                    try Sys.check { clinux_fchmodat(context.procSelfFD, n, mode) }
                }
            },
            changeSize: { [self] size in
                let entry = try acquire(node)
                defer { release(entry) }
                try entry.lock.withLock { try entry.setSizeLocked(size) }
            })
        applier.errno = { Errno.fromStore($0) }
        applier.timesChanged = { [context] setA, setM in
            // The scratch's times show through stat while it exists.
            guard node.fileType == FileType.regular, let entry = context.registry.peek(node.key) else { return }
            entry.lock.withLock {
                if case .scratch(let s) = entry.mode {
                    _ = clinux_futimens_empty_path(s.fd, setA, changes.atime.sec, changes.atime.nsec,
                                                   setM, changes.mtime.sec, changes.mtime.nsec)
                }
            }
        }
        return applier.apply(changes, to: node.fd, fileType: node.fileType)
    }
}
