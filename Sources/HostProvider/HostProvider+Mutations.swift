import CLinux
import Glibc
import Lisafs

/// SetStat and the operations that create, link, remove or rename files.
extension HostProvider {
    public func setStat(_ node: Node, _ changes: SetStatChanges) -> SetStatResult {
        SetStatApplier(
            changeMode: { [self] mode in try chmod(node, mode) },
            changeSize: { [self] size in
                // Non-blocking: opening for writing breaks a read lease the
                // sandbox may hold, which a blocking open would wait out (45 s).
                let fd = try node.writable { try reopen($0, flags: $1 | Host.nonBlocking) }
                try Host.check { ftruncate(fd, off_t(size)) }
            }
        ).apply(changes, to: node.fd, fileType: node.fileType)
    }

    /// fchmod on a real FD; through the /proc magic link for O_PATH FDs
    /// (Linux cannot chmod a symlink itself: EOPNOTSUPP).
    private func chmod(_ node: Node, _ mode: UInt32) throws {
        if node.isPathOnly {
            try withCBytes(Array(String(node.fd).utf8)) { name in
                try Host.check { clinux_fchmodat(procSelfFD, name, mode) }
            }
        } else {
            try Host.check { fchmod(node.fd, mode_t(mode)) }
        }
    }

    /// chown of a just-created file (NoUID/NoGID leave that id alone).
    func chown(_ fd: Int32, uid: UID, gid: GID) throws {
        try Host.check { clinux_fchown_empty_path(fd, uid, gid) }
    }

    /// Removes `name` from `dir` after a failed creation step (best effort).
    func undoCreate(in dir: Node, _ name: FileName, isDirectory: Bool = false) {
        let flags: Int32 = isDirectory ? clinux_AT_REMOVEDIR : 0
        let rc = name.withCString { unlinkat(dir.fd, $0, flags) }
        if rc != 0 { logger.warning("host: could not remove \(name) after a failed create: errno \(errno)") }
    }

    /// Opens, chowns and stats a file just created as `name` in `dir`; removes
    /// it again on failure.
    private func finishCreate(in dir: Node, _ name: FileName, uid: UID, gid: GID, isDirectory: Bool = false) throws -> Created<Node> {
        do {
            let created = try makeNode(pathFD: try Host.openAt(dir.fd, name, flags: Host.openPath))
            do {
                try chown(created.node.fd, uid: uid, gid: gid)
                // Owner changes touch ctime; report the final stat.
                return Created(node: created.node, stat: try Host.stat(created.node.fd))
            } catch {
                created.node.closeAll()
                throw error
            }
        } catch {
            undoCreate(in: dir, name, isDirectory: isDirectory)
            throw error
        }
    }

    public func mkdir(in dir: Node, _ name: FileName, attributes: CreateAttributes) throws -> Created<Node> {
        try name.withCString { cName in
            try Host.check { mkdirat(dir.fd, cName, mode_t(attributes.permissions)) }
        }
        return try finishCreate(in: dir, name, uid: attributes.uid, gid: attributes.gid, isDirectory: true)
    }

    /// Only regular files and FIFOs (type 0 means regular, as for mknod(2)).
    public func mknod(in dir: Node, _ name: FileName, attributes: CreateAttributes,
                      major: UInt32, minor: UInt32) throws -> Created<Node> {
        var type = attributes.fileType
        if type == 0 { type = FileType.regular }
        guard type == FileType.regular || type == FileType.fifo else { throw Errno.EPERM }
        if type == FileType.fifo && !options.allowFifos { throw Errno.EPERM }
        try name.withCString { cName in
            try Host.check { clinux_mknodat(dir.fd, cName, type | attributes.permissions, 0, 0) }
        }
        return try finishCreate(in: dir, name, uid: attributes.uid, gid: attributes.gid)
    }

    public func symlink(in dir: Node, _ name: FileName, target: [UInt8], uid: UID, gid: GID) throws -> Created<Node> {
        try withCBytes(target) { cTarget in
            try name.withCString { cName in
                try Host.check { symlinkat(cTarget, dir.fd, cName) }
            }
        }
        return try finishCreate(in: dir, name, uid: uid, gid: gid)
    }

    /// linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; without it, link
    /// through the /proc magic link (still the already-resolved file).
    public func link(_ target: Node, in dir: Node, _ name: FileName) throws -> Created<Node> {
        try name.withCString { cName in
            if linkat(target.fd, "", dir.fd, cName, Host.atEmptyPath) == 0 { return }
            let err = errno
            guard err == ENOENT || err == EPERM else { throw Errno(err) }
            try withCBytes(procPath(target.fd)) { path in
                try Host.check { linkat(AT_FDCWD, path, dir.fd, cName, Host.atSymlinkFollow) }
            }
        }
        do {
            return try makeNode(pathFD: try Host.openAt(dir.fd, name, flags: Host.openPath))
        } catch {
            undoCreate(in: dir, name)
            throw error
        }
    }

    public func unlink(in dir: Node, _ name: FileName, flags: UInt32) throws {
        try name.withCString { cName in
            try Host.check { unlinkat(dir.fd, cName, Int32(bitPattern: flags)) }
        }
    }

    public func rename(from oldDir: Node, _ oldName: FileName, to newDir: Node, _ newName: FileName, flags: UInt32) throws {
        try oldName.withCString { cOld in
            try newName.withCString { cNew in
                try Host.check { clinux_renameat2(oldDir.fd, cOld, newDir.fd, cNew, flags) }
            }
        }
    }
}
