import CLinux
import Glibc
import Lisafs
import SealedStore

/// PRead, PWrite, FAllocate and size changes on an open (loaded) file.
extension SealedInode {
    func readLocked(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        switch mode {
        case .scratch(let s):
            return try Sys.readFully(s.fd, buffer, at: offset)
        case .direct(let d):
            return try withSealedLocked { try d.read(into: buffer, at: offset, $0) }
        case .unloaded, .disposed:
            throw Errno.EIO
        }
    }

    func writeLocked(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int {
        everWritable = true
        switch mode {
        case .scratch(let s):
            try Sys.writeFully(s.fd, buffer, at: offset)
            return buffer.count
        case .direct(let d):
            try withSealedLocked { try d.write(from: buffer, at: offset, $0) }
            // Bound the memory a client can pin: commit large dirty sets early.
            if d.dirtyBytes > context.options.directDirtyLimit {
                try commitLocked(.periodicQuick)
            }
            return buffer.count
        case .unloaded, .disposed:
            throw Errno.EIO
        }
    }

    func allocateLocked(mode allocateMode: UInt64, offset: UInt64, length: UInt64) throws {
        everWritable = true
        guard offset <= UInt64(Int64.max), length <= UInt64(Int64.max) - offset else { throw Errno.EFBIG }
        switch mode {
        case .scratch(let s):
            guard allocateMode <= UInt64(Int32.max) else { throw Errno.EINVAL }
            try Sys.check { clinux_fallocate(s.fd, Int32(allocateMode), Int64(offset), Int64(length)) }
        case .direct(let d):
            // Plain allocation only: it can only grow the file.
            guard allocateMode == 0 else { throw Errno.EOPNOTSUPP }
            if offset + length > d.logicalSize {
                try withSealedLocked { try d.truncate(to: offset + length, $0) }
            }
        case .unloaded, .disposed:
            throw Errno.EIO
        }
    }

    /// Changes the live size without committing (O_TRUNC, SetStat before its commit).
    func truncateLocked(to size: UInt64) throws {
        switch mode {
        case .scratch(let s):
            try Sys.truncate(s.fd, to: size)
            updateAccountingLocked(Int64(size))
        case .direct(let d):
            try withSealedLocked { try d.truncate(to: size, $0) }
        case .unloaded:
            break
        case .disposed:
            throw Errno.EIO
        }
    }

    /// SetStat(size): resizes and commits at once. A file with no loaded state
    /// is resized by the store directly (no decryption of the whole file).
    func setSizeLocked(_ size: UInt64) throws {
        guard size <= UInt64(Int64.max) else { throw Errno.EFBIG }
        everWritable = true
        if case .unloaded = mode {
            let file = try sealedLocked()
            guard file.committedSize != size else { return }
            do {
                try file.commit([], newSize: size, durable: false)
            } catch {
                throw Errno.fromStore(error)
            }
            hasUnsyncedCommits = true
            context.sizes.remove(key)
            return
        }
        try truncateLocked(to: size)
        try commitLocked(.sizeChange)
    }
}
