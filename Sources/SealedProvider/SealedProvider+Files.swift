import CLinux
import Glibc
import Lisafs
import SealedStore

/// Opening files and operations on open files.
extension SealedProvider {
    public func open(_ node: Node, flags: OpenFlags) throws -> Opened<OpenFile> {
        switch node.fileType {
        case FileType.directory:
            let fd = try context.reopen(node.fd, flags: O_RDONLY | Sys.directory)
            return Opened(openFile: OpenFile(kind: .directory(fd: fd), flags: flags), donatedFD: nil)
        case FileType.regular:
            let entry = try acquire(node)
            do {
                let donated: Int32? = try entry.lock.withLock {
                    if case .scratch = entry.mode { context.statistics.update { $0.scratchReuses += 1 } }
                    return try entry.openLocked(flags: flags)
                }
                return Opened(openFile: OpenFile(kind: .file(entry), flags: flags), donatedFD: donated)
            } catch {
                release(entry)
                throw Errno.fromStore(error)
            }
        case FileType.socket:
            throw Errno.ENXIO
        default:
            // Nothing else is created in a store; anything found there stays closed.
            throw Errno.EPERM
        }
    }

    public func openCreate(in dir: Node, _ name: FileName, attributes: CreateAttributes,
                           flags: OpenFlags) throws -> CreatedOpen<Node, OpenFile> {
        let file = try createSealedFile(in: dir, name, attributes: attributes)
        var node: Node? = nil
        var entry: SealedInode? = nil
        var adopted = false
        do {
            let created = try createdNode(of: file, named: name, in: dir)
            node = created.node
            let inode = try context.registry.acquire(created.node.key, context: context) { try Sys.dup(created.node.fd) }
            entry = inode
            let donated: Int32? = try inode.lock.withLock {
                inode.adoptCreatedLocked(file, ciphertextTimes: (created.stat.atime.timespec, created.stat.mtime.timespec))
                adopted = true
                return try inode.openLocked(flags: flags)
            }
            return CreatedOpen(node: created.node, stat: created.stat, openFile: OpenFile(kind: .file(inode), flags: flags),
                               donatedFD: donated)
        } catch {
            // Nothing may remain: the name, the sidecar, the handles.
            let id = file.id
            name.withCString { _ = unlinkat(dir.fd, $0, 0) }
            if let entry {
                entry.lock.withLock { entry.isUnlinked = true }
                release(entry)
            }
            if !adopted { file.close() }
            try? store.removeFile(id)
            if let node { Sys.close(node.fd) }
            throw Errno.fromStore(error)
        }
    }

    /// The node of the file just created as `name` in `dir`: an O_PATH descriptor
    /// opened by that name (a cheaper lookup than a reopen through /proc), kept only
    /// if it is that file — the client may have renamed another file over the name
    /// since.
    func createdNode(of file: SealedFile, named name: FileName, in dir: Node) throws -> Created<Node> {
        if let fd = try? Sys.openAt(dir.fd, name, flags: Sys.openPath) {
            if let st = try? Sys.statx(fd), st.ino == file.identity.inode,
               clinux_makedev(st.devMajor, st.devMinor) == file.identity.device {
                return makeNode(pathFD: fd, ciphertext: st, newFile: true)
            }
            Sys.close(fd)
        }
        return try makeNode(pathFD: try context.reopen(file.fileDescriptor, flags: Sys.openPath), newFile: true)
    }

    public func read(_ file: OpenFile, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        guard case .file(let entry) = file.kind else { throw Errno.EISDIR }
        guard offset <= UInt64(Int64.max) else { throw Errno.EINVAL }
        return try entry.lock.withLock { try entry.readLocked(into: buffer, at: offset) }
    }

    public func write(_ file: OpenFile, from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int {
        guard case .file(let entry) = file.kind else { throw Errno.EISDIR }
        guard offset <= UInt64(Int64.max) else { throw Errno.EINVAL }
        return try entry.lock.withLock { try entry.writeLocked(from: buffer, at: offset) }
    }

    /// Seals what changed; costs one fstat when nothing did.
    public func flush(_ file: OpenFile) throws {
        guard case .file(let entry) = file.kind else { return }
        try entry.lock.withLock { try entry.commitLocked(.flush) }
    }

    /// Seals what changed and makes every commit of the file durable.
    public func fsync(_ file: OpenFile) throws {
        switch file.kind {
        case .directory(let fd):
            try Sys.check { Glibc.fsync(fd) }
        case .file(let entry):
            try entry.lock.withLock { try entry.commitLocked(.fsync) }
        }
    }

    public func allocate(_ file: OpenFile, mode: UInt64, offset: UInt64, length: UInt64) throws {
        guard case .file(let entry) = file.kind else { throw Errno.EISDIR }
        try entry.lock.withLock { try entry.allocateLocked(mode: mode, offset: offset, length: length) }
    }

    public func close(openFile: OpenFile) {
        switch openFile.kind {
        case .directory(let fd):
            Sys.close(fd)
        case .file(let entry):
            entry.lock.withLock { entry.closeOpenLocked() }
            release(entry)
        }
    }

    /// Every record the kernel hands out is returned (HostCalls.readDirectory).
    public func getdents(_ dir: OpenFile, byteBudget: Int, restart: Bool) throws -> [DirectoryEntry] {
        guard case .directory(let fd) = dir.kind else { throw Errno.ENOTDIR }
        return try dir.streamLock.withLock {
            // data/ holds no mount points: every entry is on the directory's device.
            let device = try Sys.statx(fd)
            return try Sys.readDirectory(fd, byteBudget: byteBudget, restart: restart) { entry in
                entry.devMajor = device.devMajor
                entry.devMinor = device.devMinor
                return true
            }
        }
    }
}

extension StatxTimestamp {
    /// The same instant as a timespec (utimensat, fstat comparisons).
    var timespec: Glibc.timespec { Glibc.timespec(tv_sec: Int(sec), tv_nsec: Int(nsec)) }
}
