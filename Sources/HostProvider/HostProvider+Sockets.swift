import CLinux
import Glibc
import Lisafs

/// Unix domain sockets. Addresses are built from /proc/self/fd/N paths so the
/// kernel resolves the already-walked directory or socket file, never a
/// client path (and the length limit of sun_path applies to that short form).
extension HostProvider {
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET (others: ENXIO, as fsgofer).
    private func checkSocketType(_ type: UInt32) throws {
        guard type == 1 || type == 2 || type == 5 else { throw Errno.ENXIO }
    }

    /// Connects a new socket to the socket file. Non-blocking: the sandbox can
    /// bind a listener (BindAt) and never accept, and connect(2) to a stream
    /// listener with a full backlog would then wait forever in the gofer.
    /// AF_UNIX connects complete at once or fail; a full backlog is EAGAIN
    /// (never EINPROGRESS), which the client gets as is.
    public func connect(_ node: Node, socketType: UInt32) throws -> Int32 {
        guard options.allowSockets else { throw Errno.EPERM }
        try checkSocketType(socketType)
        let socket = try Host.check { clinux_unix_socket(Int32(socketType) | Host.nonBlocking) }
        do {
            try withCBytes(procPath(node.fd)) { path in
                try Host.check { clinux_unix_connect(socket, path) }
            }
            // The gofer never touches the connection again: hand over an
            // ordinary blocking socket, as before (and as fsgofer does).
            try Host.setNonBlocking(socket, false)
            return socket
        } catch {
            Host.close(socket)
            throw error
        }
    }

    /// Creates the listening socket, which never leaves the gofer, and an
    /// epoll instance as the client's notification FD (readable while a
    /// connection is pending; lisafs clients only poll that FD).
    ///
    /// Why not donate the socket itself (a dup): a dup shares the open file
    /// description, so the sandbox could clear O_NONBLOCK on it and Accept
    /// would then block in the gofer until some connection arrived — forever,
    /// holding the serving thread, so a hang-up was never noticed. No
    /// poll-then-accept check closes that race (the sandbox can accept the
    /// pending connection itself in between). With the socket private, its
    /// O_NONBLOCK is ours alone.
    public func bind(in dir: Node, _ name: FileName, socketType: UInt32,
                     attributes: CreateAttributes) throws -> BoundSocketCreated<Node, BoundSocket> {
        guard options.allowSockets else { throw Errno.EPERM }
        try checkSocketType(socketType)
        // Non-blocking: Accept must never block an RPC (SOCK_NONBLOCK == O_NONBLOCK).
        let socket = try Host.check { clinux_unix_socket(Int32(socketType) | Host.nonBlocking) }
        var bound = false
        var notification: Int32 = -1
        do {
            // The socket inode's mode becomes the bound file's mode.
            try Host.check { fchmod(socket, mode_t(attributes.permissions)) }
            try withCBytes(procPath(dir.fd) + [0x2F] + name.bytes) { path in
                try Host.check { clinux_unix_bind(socket, path) }
            }
            bound = true
            notification = try Host.check { clinux_epoll_create_cloexec() }
            let created = try finishSocketFile(in: dir, name, attributes: attributes)
            let donated: Int32
            do {
                donated = try Host.dup(notification)
            } catch {
                created.node.closeAll()
                throw error
            }
            return BoundSocketCreated(node: created.node, stat: created.stat,
                                      boundSocket: BoundSocket(fd: socket, notificationFD: notification),
                                      donatedFD: donated)
        } catch {
            Host.close(socket)
            Host.close(notification)
            if bound { undoCreate(in: dir, name) }
            throw error
        }
    }

    private func finishSocketFile(in dir: Node, _ name: FileName, attributes: CreateAttributes) throws -> Created<Node> {
        let created = try makeNode(pathFD: try Host.openAt(dir.fd, name, flags: Host.openPath))
        do {
            try chown(created.node.fd, uid: attributes.uid, gid: attributes.gid)
            return Created(node: created.node, stat: try Host.stat(created.node.fd))
        } catch {
            created.node.closeAll()
            throw error
        }
    }

    /// listen(2), then the socket joins the notification FD's interest list
    /// (only now: before listen(2) a stream socket polls as hung up, which
    /// would make the notification FD look readable).
    public func listen(_ socket: BoundSocket, backlog: Int32) throws {
        try Host.check { Glibc.listen(socket.fd, backlog) }
        try Host.check { clinux_epoll_watch_readable(socket.notificationFD, socket.fd) }
    }

    public func accept(_ socket: BoundSocket) throws -> (fd: Int32, peerAddress: [UInt8]) {
        let fd = try Host.check { clinux_accept4_cloexec_nonblock(socket.fd) }
        return (fd, [])
    }

    /// shutdown(2) wakes an accept(2) blocked on the socket (EINVAL).
    public func interrupt(boundSocket: BoundSocket) {
        _ = Glibc.shutdown(boundSocket.fd, Int32(SHUT_RDWR))
    }

    public func close(boundSocket: BoundSocket) {
        Host.close(boundSocket.fd)
        Host.close(boundSocket.notificationFD)
    }
}
