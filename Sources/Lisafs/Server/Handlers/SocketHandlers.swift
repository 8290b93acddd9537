/// Connect, ConnectWithCreds, BindAt, Listen, Accept.
extension Connection {
    /// Connect / ConnectWithCreds: donates a socket connected to the socket file.
    /// The credentials of ConnectWithCreds are not used: the host connection is
    /// made with the gofer's own identity, as gVisor's Debian fsgofer does for Connect.
    func connect(fd id: FDID, socketType: UInt32, mid: MID) throws -> Response {
        try withControl(id) { fd in
            guard fd.isSocket else { throw Errno.ENOTSOCK }
            let socket = try server.withRead(fd.node) {
                if fd.node.isDeleted { throw Errno.EINVAL }
                return try provider.connect(fd.handle, socketType: socketType)
            }
            return Response(mid, ConnectResp(), fds: [socket])
        }
    }

    /// BindAt: a new socket file (control FD), a bound-socket FD, and the
    /// provider's notification FD donated for polling. Write guarantee on the directory.
    func bindAt(_ request: BindAtReq) throws -> Response {
        let name = try FileName(validating: request.name)
        let attributes = CreateAttributes(mode: UInt32(request.mode) & 0o7777, uid: request.uid, gid: request.gid)
        return try withDirectory(request.dirFD) { dir in
            var donated: [Int32] = []
            let response: BindAtResp = try server.withWrite(dir.node) {
                if dir.node.isDeleted { throw Errno.EINVAL }
                let bound = try provider.bind(in: dir.handle, name, socketType: request.sockType, attributes: attributes)
                donated.append(bound.donatedFD)
                let child: (ControlFD<P>, Inode)
                do {
                    child = try registerChild(of: dir.node, name: name, handle: bound.node, stat: bound.stat)
                } catch {
                    provider.close(boundSocket: bound.boundSocket)
                    closeDonations(donated)
                    throw error
                }
                let socketFD = BoundSocketFD(control: child.0, handle: bound.boundSocket, provider: provider)
                do {
                    return BindAtResp(child: child.1, boundSocketFD: try fds.insert(.boundSocket(socketFD)))
                } catch {
                    socketFD.release(renameLockHeld: true)
                    unregister([child.1.controlFD])
                    closeDonations(donated)
                    throw error
                }
            }
            return Response(.bindAt, response, fds: donated)
        }
    }

    func listen(_ request: ListenReq) throws -> Response {
        let socket = try fds.boundSocket(request.fd)
        defer { socket.release() }
        try server.withRead(socket.control.node) {
            if socket.control.node.isDeleted { throw Errno.EINVAL }
            try provider.listen(socket.handle, backlog: request.backlog)
        }
        return Response(.listen, ListenResp())
    }

    func accept(_ request: AcceptReq) throws -> Response {
        let socket = try fds.boundSocket(request.fd)
        defer { socket.release() }
        let accepted = try server.withRead(socket.control.node) {
            if socket.control.node.isDeleted { throw Errno.EINVAL }
            return try provider.accept(socket.handle)
        }
        let peer = Array(accepted.peerAddress.prefix(SizedString.maxLength))
        return Response(.accept, AcceptResp(peerAddr: peer), fds: [accepted.fd])
    }
}
