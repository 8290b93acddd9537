/// Decoding, policy checks common to all requests, and the MID → handler switch.
extension Connection {
    /// MIDs that change the tree or file contents: refused with EROFS on a
    /// readonly mount before anything else happens (OpenAt is checked by flags).
    static var mutatingMIDs: Set<MID> {
        [.setStat, .openCreateAt, .pWrite, .mkdirAt, .mknodAt, .symlinkAt, .linkAt, .fAllocate,
         .unlinkAt, .renameAt, .renameAt2, .fSetXattr, .fRemoveXattr, .bindAt]
    }

    /// Answers one request. Never throws and never traps: every failure becomes
    /// an Error response (EIO for malformed payloads, as gVisor answers).
    func handle(_ request: InboundRequest) -> Response {
        guard request.mid != MID.error.rawValue else { return .error(.EINVAL) }  // clients never send Error
        guard let mid = MID(rawValue: request.mid), server.supportedMIDs.contains(mid) else {
            logger.debug("lisafs: unsupported MID \(request.mid)")
            return .error(.EOPNOTSUPP)
        }
        if readonly && Self.mutatingMIDs.contains(mid) { return .error(.EROFS) }
        let decoded: AnyRequest
        do {
            decoded = try AnyRequest.decode(mid: mid, payload: request.payload)
        } catch {
            logger.debug("lisafs: malformed \(mid) payload: \(error)")
            return .error(.EIO)
        }
        var response: Response
        do {
            response = try dispatch(decoded)
        } catch {
            let errno = Errno.from(error)
            if !(error is Errno) { logger.warning("lisafs: \(mid) failed: \(error)") }
            return .error(errno)
        }
        if response.payload.count > Int(maxMessageSize) {
            logger.warning("lisafs: \(mid) response of \(response.payload.count) bytes exceeds the message size")
            closeDonations(response.fds)
            response = .error(.EIO)
        }
        return response
    }

    private func dispatch(_ request: AnyRequest) throws -> Response {
        switch request {
        case .mount: return try mount()
        case .channel: return try openChannel()
        case .fStat(let r): return try fStat(r)
        case .setStat(let r): return try setStat(r)
        case .walk(let r): return try walk(r)
        case .walkStat(let r): return try walkStat(r)
        case .openAt(let r): return try openAt(r)
        case .openCreateAt(let r): return try openCreateAt(r)
        case .close(let r): return closeFDs(r)
        case .fSync(let r): return try fSync(r)
        case .pWrite(let r): return try pWrite(r)
        case .pRead(let r): return try pRead(r)
        case .mkdirAt(let r): return try mkdirAt(r)
        case .mknodAt(let r): return try mknodAt(r)
        case .symlinkAt(let r): return try symlinkAt(r)
        case .linkAt(let r): return try linkAt(r)
        case .fStatFS(let r): return try fStatFS(r)
        case .fAllocate(let r): return try fAllocate(r)
        case .readLinkAt(let r): return try readLinkAt(r)
        case .flush(let r): return try flush(r)
        case .connect(let r): return try connect(fd: r.fd, socketType: r.sockType, mid: .connect)
        case .connectWithCreds(let r): return try connect(fd: r.fd, socketType: r.sockType, mid: .connectWithCreds)
        case .unlinkAt(let r): return try unlinkAt(r)
        case .renameAt(let r): return try rename(r.oldDir, r.oldName, r.newDir, r.newName, flags: 0, mid: .renameAt)
        case .renameAt2(let r): return try rename(r.oldDir, r.oldName, r.newDir, r.newName, flags: r.flags, mid: .renameAt2)
        case .getdents64(let r): return try getdents64(r)
        case .fGetXattr(let r): return try fGetXattr(r)
        case .fSetXattr(let r): return try fSetXattr(r)
        case .fListXattr(let r): return try fListXattr(r)
        case .fRemoveXattr(let r): return try fRemoveXattr(r)
        case .bindAt(let r): return try bindAt(r)
        case .listen(let r): return try listen(r)
        case .accept(let r): return try accept(r)
        }
    }

    // MARK: Shared helpers for handlers

    /// Runs `body` with a control FD looked up (and released afterwards).
    func withControl<T>(_ id: FDID, _ body: (ControlFD<P>) throws -> T) throws -> T {
        let fd = try fds.control(id)
        defer { fd.release() }
        return try body(fd)
    }

    /// Runs `body` with a control FD that must be a directory (ENOTDIR otherwise).
    func withDirectory<T>(_ id: FDID, _ body: (ControlFD<P>) throws -> T) throws -> T {
        try withControl(id) { dir in
            guard dir.isDirectory else { throw Errno.ENOTDIR }
            return try body(dir)
        }
    }

    /// Runs `body` with an open FD looked up (and released afterwards).
    func withOpen<T>(_ id: FDID, _ body: (OpenFD<P>) throws -> T) throws -> T {
        let fd = try fds.open(id)
        defer { fd.release() }
        return try body(fd)
    }

    /// Registers a new control FD for a provider node just created or walked to
    /// as `name` in `parent`. Precondition: rename lock held shared and
    /// `parent.opLock` held (shared or exclusive). On failure the handle is closed.
    func registerChild(of parent: PathNode, name: FileName, handle: P.Node, stat: Statx) throws -> (ControlFD<P>, Inode) {
        let node = parent.childForWalk(name.bytes)
        let fd = ControlFD(node: node, handle: handle, fileType: FileType.of(stat), provider: provider,
                           renameLock: server.renameLock)
        do {
            let id = try fds.insert(.control(fd))
            return (fd, Inode(controlFD: id, stat: stat))
        } catch {
            fd.release(renameLockHeld: true)
            throw error
        }
    }

    /// Forgets FDs registered earlier in a request that then failed.
    /// Precondition: rename lock held (shared or exclusive).
    func unregister(_ ids: [FDID]) {
        for id in ids.reversed() { fds.remove(id)?.release(renameLockHeld: true) }
    }
}
