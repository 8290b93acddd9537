/// UnlinkAt, RenameAt, RenameAt2.
extension Connection {
    static var renameNoReplace: UInt32 { 1 }
    static var renameExchange: UInt32 { 2 }
    static var atRemoveDir: UInt32 { 0x200 }

    /// UnlinkAt: write guarantee on the directory and on the child's node if the
    /// tree knows one (so nothing is in flight on it), which is then detached and
    /// marked deleted.
    func unlinkAt(_ request: UnlinkAtReq) throws -> Response {
        let name = try FileName(validating: request.name)
        guard request.flags & ~Self.atRemoveDir == 0 else { throw Errno.EINVAL }
        try withDirectory(request.dirFD) { dir in
            try server.withWrite(dir.node) {
                if dir.node.isDeleted { throw Errno.EINVAL }
                // Deeper in the tree than dir, so locking it second cannot cycle.
                let child = dir.node.existingChild(name.bytes)
                child?.opLock.lockWrite()
                defer { child?.opLock.unlock() }
                try provider.unlink(in: dir.handle, name, flags: request.flags)
                if let child {
                    // Nobody can add `name` while we hold dir's lock exclusively,
                    // so the entry (if still there) is `child`.
                    dir.node.detachChild(name.bytes)
                    child.markDeletedRecursively()
                }
            }
        }
        return Response(.unlinkAt, UnlinkAtResp())
    }

    /// RenameAt / RenameAt2: global guarantee, then the node tree is updated to
    /// match (the replaced node is marked deleted; with RENAME_EXCHANGE the two
    /// nodes swap places).
    func rename(_ oldDirFD: FDID, _ oldNameBytes: [UInt8], _ newDirFD: FDID, _ newNameBytes: [UInt8],
                flags: UInt32, mid: MID) throws -> Response {
        let oldName = try FileName(validating: oldNameBytes)
        let newName = try FileName(validating: newNameBytes)
        let allowed = Self.renameNoReplace | Self.renameExchange
        guard flags & ~allowed == 0, flags != allowed else { throw Errno.EINVAL }
        try withControl(oldDirFD) { oldDir in
            try withControl(newDirFD) { newDir in
                guard oldDir.isDirectory, newDir.isDirectory else { throw Errno.ENOTDIR }
                try server.withGlobal {
                    if oldDir.node.isDeleted || newDir.node.isDeleted { throw Errno.EINVAL }
                    if oldDir.node === newDir.node && oldName == newName { return }
                    try provider.rename(from: oldDir.handle, oldName, to: newDir.handle, newName, flags: flags)
                    let replaced = newDir.node.detachChild(newName.bytes)
                    let renamed = oldDir.node.detachChild(oldName.bytes)
                    if let replaced {
                        if flags & Self.renameExchange != 0 {
                            replaced.move(to: oldDir.node, as: oldName.bytes)
                        } else {
                            replaced.markDeletedRecursively()
                        }
                    }
                    renamed?.move(to: newDir.node, as: newName.bytes)
                }
            }
        }
        return Response(mid, RenameAtResp())
    }
}
