import CLinux
import Glibc
import Lisafs
import SealedStore

/// Creating, linking, removing and renaming. Sidecars follow file IDs, not
/// names: only the removal of a file's last link (unlink, or a rename over it)
/// touches one.
extension SealedProvider {
    /// A new empty sealed file `name` in `dir` with the requested permissions and owner.
    func createSealedFile(in dir: Node, _ name: FileName, attributes: CreateAttributes) throws -> SealedFile {
        let mode = attributes.permissions
        do {
            return try store.createFile(in: dir.fd, nameBytes: name.bytes, mode: mode) { fd in
                if mode & self.umaskBits != 0 { try Sys.check { fchmod(fd, mode_t(mode)) } }
                if attributes.uid != NoUID || attributes.gid != NoGID {
                    try Sys.check { clinux_fchown_empty_path(fd, attributes.uid, attributes.gid) }
                }
            }
        } catch let e as SealedStoreError { throw Errno.fromStore(e) }
    }

    /// Stat of a just-created entry, chowned; the entry is removed again on failure.
    private func finishCreate(in dir: Node, _ name: FileName, uid: UID, gid: GID, mode: UInt32?,
                              isDirectory: Bool = false) throws -> Created<Node> {
        do {
            let fd = try Sys.openAt(dir.fd, name, flags: Sys.openPath)
            do {
                if let mode, mode & umaskBits != 0 {
                    try withCBytes(Array(String(fd).utf8)) { n in try Sys.check { clinux_fchmodat(context.procSelfFD, n, mode) } }
                }
                if uid != NoUID || gid != NoGID { try Sys.check { clinux_fchown_empty_path(fd, uid, gid) } }
            } catch {
                Sys.close(fd)
                throw error
            }
            return try makeNode(pathFD: fd)
        } catch {
            name.withCString { _ = unlinkat(dir.fd, $0, isDirectory ? Sys.atRemoveDir : 0) }
            throw error
        }
    }

    public func mkdir(in dir: Node, _ name: FileName, attributes: CreateAttributes) throws -> Created<Node> {
        try name.withCString { cName in try Sys.check { mkdirat(dir.fd, cName, mode_t(attributes.permissions)) } }
        return try finishCreate(in: dir, name, uid: attributes.uid, gid: attributes.gid, mode: attributes.permissions,
                                isDirectory: true)
    }

    /// Regular files only (type 0 means regular, as for mknod(2)): the store
    /// holds nothing but files, directories and symlinks.
    public func mknod(in dir: Node, _ name: FileName, attributes: CreateAttributes,
                      major: UInt32, minor: UInt32) throws -> Created<Node> {
        let type = attributes.fileType
        guard type == 0 || type == FileType.regular else { throw Errno.EPERM }
        let file = try createSealedFile(in: dir, name, attributes: attributes)
        defer { file.close() }
        do {
            return try makeNode(pathFD: try context.reopen(file.fileDescriptor, flags: Sys.openPath), newFile: true)
        } catch {
            name.withCString { _ = unlinkat(dir.fd, $0, 0) }
            try? store.removeFile(file.id)
            throw error
        }
    }

    public func symlink(in dir: Node, _ name: FileName, target: [UInt8], uid: UID, gid: GID) throws -> Created<Node> {
        try withCBytes(target) { cTarget in
            try name.withCString { cName in try Sys.check { symlinkat(cTarget, dir.fd, cName) } }
        }
        return try finishCreate(in: dir, name, uid: uid, gid: gid, mode: nil)
    }

    /// linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; without it, link
    /// through the /proc magic link (still the already-resolved file).
    public func link(_ target: Node, in dir: Node, _ name: FileName) throws -> Created<Node> {
        try name.withCString { cName in
            if linkat(target.fd, "", dir.fd, cName, Sys.atEmptyPath) == 0 { return }
            let err = errno
            guard err == ENOENT || err == EPERM else { throw Errno(err) }
            try withCBytes(Array("/proc/self/fd/\(target.fd)".utf8)) { path in
                try Sys.check { linkat(AT_FDCWD, path, dir.fd, cName, Sys.atSymlinkFollow) }
            }
        }
        do {
            return try makeNode(pathFD: try Sys.openAt(dir.fd, name, flags: Sys.openPath))
        } catch {
            name.withCString { _ = unlinkat(dir.fd, $0, 0) }
            throw error
        }
    }

    public func unlink(in dir: Node, _ name: FileName, flags: UInt32) throws {
        // Hold the victim so we can tell afterwards whether its last link went.
        let victim = flags & UInt32(Sys.atRemoveDir) == 0 ? regularFileAt(dir, name) : nil
        defer { if let victim { Sys.close(victim.fd) } }
        let op: () throws -> Void = { _ = try name.withCString { cName in try Sys.check { unlinkat(dir.fd, cName, Int32(bitPattern: flags)) } } }
        guard let victim else { return try op() }
        let gone: Bool
        do { gone = try store.removingLink(of: victim.fd, op) } catch let e as SealedStoreError { throw Errno.fromStore(e) }
        if gone { forgetIfLastLinkGone(victim) }
    }

    public func rename(from oldDir: Node, _ oldName: FileName, to newDir: Node, _ newName: FileName, flags: UInt32) throws {
        let exchange: UInt32 = 2 // RENAME_EXCHANGE
        let victim = flags & exchange == 0 ? regularFileAt(newDir, newName) : nil
        defer { if let victim { Sys.close(victim.fd) } }
        let op: () throws -> Void = {
            _ = try oldName.withCString { cOld in
                try newName.withCString { cNew in try Sys.check { clinux_renameat2(oldDir.fd, cOld, newDir.fd, cNew, flags) } }
            }
        }
        guard let victim else { return try op() }
        let gone: Bool
        do { gone = try store.removingLink(of: victim.fd, op) } catch let e as SealedStoreError { throw Errno.fromStore(e) }
        if gone { forgetIfLastLinkGone(victim) }
    }

    /// An O_PATH descriptor and key of `name` in `dir` when it is a regular file.
    private func regularFileAt(_ dir: Node, _ name: FileName) -> (fd: Int32, key: InodeKey)? {
        guard let fd = try? Sys.openAt(dir.fd, name, flags: Sys.openPath) else { return nil }
        guard let st = try? Sys.statx(fd), FileType.of(st) == FileType.regular else {
            Sys.close(fd)
            return nil
        }
        return (fd, InodeKey(st))
    }

    /// After an unlink or a replacing rename: if the file has no link left, its
    /// sidecar and journal go (when its last handle closes, if it is still open)
    /// and its cached state is dropped.
    private func forgetIfLastLinkGone(_ victim: (fd: Int32, key: InodeKey)) {
        context.sizes.remove(victim.key)
        if let entry = context.registry.peek(victim.key) {
            entry.lock.withLock {
                entry.isUnlinked = true
                if context.registry.removeIfUnusedLocked(entry) { entry.disposeLocked() }
            }
        }
    }
}

extension String {
    /// The string whose UTF-8 encoding is exactly `bytes`, or nil.
    init?(validatingUTF8Bytes bytes: [UInt8]) {
        let decoded = String(decoding: bytes, as: UTF8.self)
        guard Array(decoded.utf8) == bytes else { return nil }
        self = decoded
    }
}
