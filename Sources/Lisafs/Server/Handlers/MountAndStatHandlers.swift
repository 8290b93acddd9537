/// Mount, FStat, SetStat, FStatFS.
extension Connection {
    /// Mount: a control FD on the tree's root. Read guarantee on the root.
    func mount() throws -> Response {
        let root = server.root
        let inode: Inode = try server.withRead(root) {
            let created = try provider.mountRoot()
            root.incRef()
            let fd = ControlFD(node: root, handle: created.node, fileType: FileType.of(created.stat),
                               provider: provider, renameLock: server.renameLock)
            do {
                return Inode(controlFD: try fds.insert(.control(fd)), stat: created.stat)
            } catch {
                fd.release(renameLockHeld: true)
                throw error
            }
        }
        return Response(.mount, MountResp(root: inode, maxMessageSize: maxMessageSize, supporting: server.supportedMIDs))
    }

    /// FStat on a control or open FD (a bound-socket FD has no stat: EINVAL).
    func fStat(_ request: StatReq) throws -> Response {
        let entry = try fds.lookup(request.fd)
        defer { entry.release() }
        let stat: Statx
        switch entry {
        case .control(let fd):
            stat = try server.withRead(fd.node) { try provider.stat(fd.handle) }
        case .open(let fd):
            stat = try server.withRead(fd.control.node) { try provider.stat(openFile: fd.handle) }
        case .boundSocket:
            throw Errno.EINVAL
        }
        return Response(.fStat, stat)
    }

    /// SetStat: partial success is reported in the response, not as an error.
    func setStat(_ request: SetStatReq) throws -> Response {
        try withControl(request.fd) { fd in
            guard request.mask & ~SetStatChanges.supportedMask == 0 else { throw Errno.EPERM }
            let result: SetStatResult = try server.withWrite(fd.node) {
                if fd.node.isDeleted && !provider.allowsModifyingDeleted { throw Errno.EINVAL }
                return provider.setStat(fd.handle, SetStatChanges(request))
            }
            let errno = result.failure.map { UInt32(bitPattern: $0.code) } ?? 0
            return Response(.setStat, SetStatResp(failureMask: result.failureMask, failureErrNo: errno))
        }
    }

    func fStatFS(_ request: FStatFSReq) throws -> Response {
        try withControl(request.fd) { fd in
            Response(.fStatFS, try server.withRead(fd.node) { try provider.statfs(fd.handle) })
        }
    }
}
