import CLinux
import Glibc
import Lisafs

/// Opening files and operations on open files.
extension HostProvider {
    /// Regular files get a donated dup of the open FD (the client then does its
    /// I/O directly); FIFOs too, opened non-blocking so the RPC cannot block.
    /// Character devices get a separate open of the device instead (see below).
    ///
    /// Nothing here may wait on the sandbox:
    /// - every open is O_NONBLOCK. For regular files that matters only when
    ///   opening for writing breaks a read lease, which the sandbox can hold
    ///   through a donated FD: blocking, open(2) would wait lease-break-time
    ///   (45 s by default); non-blocking it is EAGAIN at once. It is cleared
    ///   again on the description (a dup is shared with the client).
    /// - a dup shares the open file description, so the client can clear
    ///   O_NONBLOCK on the gofer's FD. Harmless for FIFOs (pread/pwrite on a
    ///   pipe are ESPIPE, the gofer never waits on one) and regular files, but
    ///   a character device may block in pread (e.g. /dev/kmsg): the client
    ///   gets its own open file description of the device instead.
    public func open(_ node: Node, flags: OpenFlags) throws -> Opened<OpenFile> {
        let requested = Int32(bitPattern: flags.rawValue)
        var hostFlags = requested | Host.nonBlocking
        switch node.fileType {
        case FileType.socket:
            throw Errno.ENXIO
        case FileType.fifo:
            guard options.allowFifos else { throw Errno.EPERM }
        case FileType.character:
            guard options.allowCharacterDevices else { throw Errno.EPERM }
            hostFlags |= Host.noControllingTTY
        case FileType.directory:
            hostFlags |= Host.directory
        default:
            break
        }
        let fd = try reopen(node.fd, flags: hostFlags)
        var donated: Int32? = nil
        switch node.fileType {
        case FileType.directory:
            break
        case FileType.character:
            donated = try? reopen(node.fd, flags: hostFlags)
        case FileType.regular:
            do {
                try Host.setNonBlocking(fd, false)
            } catch {
                Host.close(fd)
                throw error
            }
            donated = try? Host.dup(fd)
        default:
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
            // Non-blocking like `open` (lease breaks), then an ordinary description again.
            let openFD = try reopen(controlFD, flags: Int32(bitPattern: flags.rawValue) | Host.nonBlocking)
            do {
                try Host.setNonBlocking(openFD, false)
            } catch {
                Host.close(openFD)
                throw error
            }
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
            let n: Int
            do {
                n = try Host.check { pread(file.fd, base + done, buffer.count - done, off_t(offset) + off_t(done)) }
            } catch where done > 0 {
                // Bytes already read are the answer (a device with nothing
                // more now: EAGAIN; a record too long for what is left: EINVAL).
                break
            }
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
            let n: Int
            do {
                n = try Host.check { pwrite(file.fd, base + done, buffer.count - done, off_t(offset) + off_t(done)) }
            } catch where done > 0 {
                break  // report what was written (a full disk after a partial write: ENOSPC next time)
            }
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

    /// Every record the kernel hands out is returned (HostCalls.readDirectory).
    /// An entry whose device cannot be read is dropped, as fsgofer does (it
    /// vanished meanwhile).
    public func getdents(_ dir: OpenFile, byteBudget: Int, restart: Bool) throws -> [DirectoryEntry] {
        try Host.readDirectory(dir.fd, byteBudget: byteBudget, restart: restart) { entry in
            guard let device = withCBytes(entry.name, { Host.device(of: $0, in: dir.fd) }) else { return false }
            entry.devMajor = device.major
            entry.devMinor = device.minor
            return true
        }
    }
}
