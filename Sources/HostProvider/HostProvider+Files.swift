import CLinux
import Glibc
import Lisafs

/// Opening files and operations on open files.
extension HostProvider {
    /// Regular files get a donated dup of the open FD (the client then does its
    /// I/O directly); FIFOs too, opened non-blocking so the RPC cannot block.
    public func open(_ node: Node, flags: OpenFlags) throws -> Opened<OpenFile> {
        var hostFlags = Int32(bitPattern: flags.rawValue)
        switch node.fileType {
        case FileType.socket:
            throw Errno.ENXIO
        case FileType.fifo:
            guard options.allowFifos else { throw Errno.EPERM }
            hostFlags |= Host.nonBlocking
        case FileType.character:
            guard options.allowCharacterDevices else { throw Errno.EPERM }
            hostFlags |= Host.nonBlocking
        case FileType.directory:
            hostFlags |= Host.directory
        default:
            break
        }
        let fd = try reopen(node.fd, flags: hostFlags)
        var donated: Int32? = nil
        if node.fileType != FileType.directory {
            donated = try? Host.dup(fd)
        }
        return Opened(openFile: OpenFile(fd: fd), donatedFD: donated)
    }

    public func openCreate(in dir: Node, _ name: FileName, attributes: CreateAttributes,
                           flags: OpenFlags) throws -> CreatedOpen<Node, OpenFile> {
        let createFlags = O_CREAT | O_EXCL | O_RDONLY | Host.nonBlocking
        let controlFD = try Host.openAt(dir.fd, name, flags: createFlags, mode: attributes.permissions)
        do {
            try chown(controlFD, uid: attributes.uid, gid: attributes.gid)
            let stat = try Host.stat(controlFD)
            let openFD = try reopen(controlFD, flags: Int32(bitPattern: flags.rawValue))
            let donated = try? Host.dup(openFD)
            return CreatedOpen(node: Node(fd: controlFD, fileType: FileType.regular, isPathOnly: false), stat: stat,
                               openFile: OpenFile(fd: openFD), donatedFD: donated)
        } catch {
            Host.close(controlFD)
            undoCreate(in: dir, name)
            throw error
        }
    }

    public func read(_ file: OpenFile, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        guard offset <= UInt64(Int64.max) else { throw Errno.EINVAL }
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let n = try Host.check { pread(file.fd, base + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func write(_ file: OpenFile, from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int {
        guard offset <= UInt64(Int64.max) else { throw Errno.EINVAL }
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let n = try Host.check { pwrite(file.fd, base + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func flush(_ file: OpenFile) throws {}

    public func fsync(_ file: OpenFile) throws {
        try Host.check { Glibc.fsync(file.fd) }
    }

    public func allocate(_ file: OpenFile, mode: UInt64, offset: UInt64, length: UInt64) throws {
        guard mode <= UInt64(Int32.max), offset <= UInt64(Int64.max), length <= UInt64(Int64.max) else {
            throw Errno.EINVAL
        }
        try Host.check { clinux_fallocate(file.fd, Int32(mode), Int64(offset), Int64(length)) }
    }

    public func close(openFile: OpenFile) { Host.close(openFile.fd) }

    /// Reads host records with a buffer no larger than the remaining budget, so
    /// every record the kernel hands out is returned (the directory position
    /// never skips entries). An entry whose device cannot be read is dropped,
    /// as fsgofer does (it vanished meanwhile).
    public func getdents(_ dir: OpenFile, byteBudget: Int, restart: Bool) throws -> [DirectoryEntry] {
        if restart {
            try Host.check { lseek(dir.fd, 0, SEEK_SET) }
        }
        var entries: [DirectoryEntry] = []
        var used = 0
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while used < byteBudget {
            let size = min(buffer.count, byteBudget - used)
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { raw in
                    try Host.check { clinux_getdents64(dir.fd, raw.baseAddress, size) }
                }
            } catch let error as Errno where error == .EINVAL {
                // The next record does not fit the remaining budget.
                break
            }
            if n == 0 { break }
            used += n
            parseDirents(buffer, count: n) { entry in
                var entry = entry
                let device = withCBytes(entry.name) { Host.device(of: $0, in: dir.fd) }
                guard let device else { return }
                entry.devMajor = device.major
                entry.devMinor = device.minor
                entries.append(entry)
            }
        }
        return entries
    }

    /// Walks `count` bytes of linux_dirent64 records, bounds-checking each.
    private func parseDirents(_ buffer: [UInt8], count: Int, _ emit: (DirectoryEntry) -> Void) {
        buffer.withUnsafeBytes { raw in
            var position = 0
            let headerSize = 19  // d_ino 8, d_off 8, d_reclen 2, d_type 1
            while position + headerSize <= count {
                let ino = raw.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                let offset = raw.loadUnaligned(fromByteOffset: position + 8, as: UInt64.self)
                let length = Int(raw.loadUnaligned(fromByteOffset: position + 16, as: UInt16.self))
                let type = raw[position + 18]
                guard length >= headerSize, position + length <= count else { return }
                let nameBytes = raw[(position + headerSize)..<(position + length)]
                let name = Array(nameBytes.prefix { $0 != 0 })
                emit(DirectoryEntry(name: name, ino: ino, offset: offset, type: type))
                position += length
            }
        }
    }
}
