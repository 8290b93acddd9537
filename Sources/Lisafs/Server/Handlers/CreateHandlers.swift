/// MkdirAt, MknodAt, SymlinkAt, LinkAt, ReadLinkAt.
extension Connection {
    /// Longest symlink target accepted (PATH_MAX - 1).
    static var maxSymlinkTarget: Int { 4095 }

    /// Runs a creation in directory `dirFD` with a write guarantee on it and
    /// registers the new child's control FD.
    private func create(in dirFD: FDID, _ name: FileName,
                        _ make: (ControlFD<P>) throws -> Created<P.Node>) throws -> Inode {
        try withDirectory(dirFD) { dir in
            try server.withWrite(dir.node) {
                if dir.node.isDeleted { throw Errno.EINVAL }
                try fds.requireRoom(for: 1)
                let created = try make(dir)
                return try registerChild(of: dir.node, name: name, handle: created.node, stat: created.stat).1
            }
        }
    }

    func mkdirAt(_ request: MkdirAtReq) throws -> Response {
        let name = try FileName(validating: request.name)
        let attributes = CreateAttributes(mode: UInt32(request.mode) & 0o7777, uid: request.uid, gid: request.gid)
        let inode = try create(in: request.dirFD, name) { dir in
            try provider.mkdir(in: dir.handle, name, attributes: attributes)
        }
        return Response(.mkdirAt, MkdirAtResp(childDir: inode))
    }

    func mknodAt(_ request: MknodAtReq) throws -> Response {
        let name = try FileName(validating: request.name)
        let attributes = CreateAttributes(mode: UInt32(request.mode), uid: request.uid, gid: request.gid)
        let inode = try create(in: request.dirFD, name) { dir in
            try provider.mknod(in: dir.handle, name, attributes: attributes, major: request.major, minor: request.minor)
        }
        return Response(.mknodAt, MknodAtResp(child: inode))
    }

    func symlinkAt(_ request: SymlinkAtReq) throws -> Response {
        let name = try FileName(validating: request.name)
        let target = request.target
        guard !target.isEmpty else { throw Errno.ENOENT }
        guard target.count <= Self.maxSymlinkTarget else { throw Errno.ENAMETOOLONG }
        guard !target.contains(0) else { throw Errno.EINVAL }
        let inode = try create(in: request.dirFD, name) { dir in
            try provider.symlink(in: dir.handle, name, target: target, uid: request.uid, gid: request.gid)
        }
        return Response(.symlinkAt, SymlinkAtResp(symlink: inode))
    }

    /// LinkAt: write guarantee on the directory, read guarantee on the target
    /// (locked after the directory: the target is not a directory, so it has no
    /// descendants and this order cannot cycle).
    func linkAt(_ request: LinkAtReq) throws -> Response {
        let name = try FileName(validating: request.name)
        let inode: Inode = try withDirectory(request.dirFD) { dir in
            try withControl(request.target) { target in
                if target.isDirectory { throw Errno.EPERM }
                return try server.withWrite(dir.node) {
                    if dir.node.isDeleted { throw Errno.EINVAL }
                    return try target.node.opLock.withReadLock {
                        if target.node.isDeleted { throw Errno.EINVAL }
                        try fds.requireRoom(for: 1)
                        let created = try provider.link(target.handle, in: dir.handle, name)
                        return try registerChild(of: dir.node, name: name, handle: created.node, stat: created.stat).1
                    }
                }
            }
        }
        return Response(.linkAt, LinkAtResp(link: inode))
    }

    func readLinkAt(_ request: ReadLinkAtReq) throws -> Response {
        try withControl(request.fd) { fd in
            guard fd.isSymlink else { throw Errno.EINVAL }
            let target = try server.withRead(fd.node) {
                if fd.node.isDeleted { throw Errno.EINVAL }
                return try provider.readlink(fd.handle)
            }
            guard target.count <= SizedString.maxLength else { throw Errno.ENAMETOOLONG }
            return Response(.readLinkAt, ReadLinkAtResp(target: target))
        }
    }
}
