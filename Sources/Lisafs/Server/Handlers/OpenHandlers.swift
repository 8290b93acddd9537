/// OpenAt, OpenCreateAt, Close.
extension Connection {
    /// OpenAt: an open FD on a control FD's file, plus the provider's donated host
    /// FD if any. Read guarantee on the file.
    func openAt(_ request: OpenAtReq) throws -> Response {
        let flags = OpenFlags(filtering: request.flags)
        if readonly && (flags.accessMode != 0 || flags.truncates) { throw Errno.EROFS }
        return try withControl(request.fd) { fd in
            if fd.isDirectory && (flags.accessMode != 0 || flags.truncates) { throw Errno.EISDIR }
            var donated: [Int32] = []
            let id: FDID = try server.withRead(fd.node) {
                if fd.node.isDeleted || fd.isSymlink { throw Errno.EINVAL }
                let opened = try provider.open(fd.handle, flags: flags)
                if let hostFD = opened.donatedFD { donated.append(hostFD) }
                let openFD = OpenFD(control: fd, handle: opened.openFile, flags: flags, provider: provider)
                do {
                    return try fds.insert(.open(openFD))
                } catch {
                    openFD.release(renameLockHeld: true)
                    closeDonations(donated)
                    throw error
                }
            }
            return Response(.openAt, OpenAtResp(openFD: id), fds: donated)
        }
    }

    /// OpenCreateAt: creates a regular file, returning its control FD and an open
    /// FD on it. Write guarantee on the directory.
    func openCreateAt(_ request: OpenCreateAtReq) throws -> Response {
        let name = try FileName(validating: request.name)
        let flags = OpenFlags(filtering: request.flags)
        let attributes = CreateAttributes(mode: UInt32(request.mode) & 0o7777, uid: request.uid, gid: request.gid)
        return try withDirectory(request.dirFD) { dir in
            var donated: [Int32] = []
            let response: OpenCreateAtResp = try server.withWrite(dir.node) {
                if dir.node.isDeleted { throw Errno.EINVAL }
                try fds.requireRoom(for: 2)
                let created = try provider.openCreate(in: dir.handle, name, attributes: attributes, flags: flags)
                if let hostFD = created.donatedFD { donated.append(hostFD) }
                let child: (ControlFD<P>, Inode)
                do {
                    child = try registerChild(of: dir.node, name: name, handle: created.node, stat: created.stat)
                } catch {
                    provider.close(openFile: created.openFile)
                    closeDonations(donated)
                    throw error
                }
                let openFD = OpenFD(control: child.0, handle: created.openFile, flags: flags, provider: provider)
                do {
                    let openID = try fds.insert(.open(openFD))
                    return OpenCreateAtResp(child: child.1, newFD: openID)
                } catch {
                    openFD.release(renameLockHeld: true)
                    unregister([child.1.controlFD])
                    closeDonations(donated)
                    throw error
                }
            }
            return Response(.openCreateAt, response, fds: donated)
        }
    }

    /// Close: drops the client's reference on each FD; unknown FDIDs are ignored
    /// (as gVisor does). Resources go when the last in-flight user is done.
    func closeFDs(_ request: CloseReq) -> Response {
        for id in request.fds {
            fds.remove(id)?.release()
        }
        return Response(.close, CloseResp())
    }
}
