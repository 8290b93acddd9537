import CLinux
import Glibc
import Lisafs

/// Throwing wrappers for the Linux calls the provider makes. Every call is
/// relative to an FD; no client-supplied path is ever resolved from "/".
typealias Sys = HostCalls

extension HostCalls {
    static func dup(_ fd: Int32) throws -> Int32 {
        try check { clinux_fcntl_int(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// statx of the file `fd` refers to (not following a symlink it refers to).
    static func statx(_ fd: Int32) throws -> Statx {
        var raw = clinux_statx()
        try check { clinux_statx(fd, "", atEmptyPath | atSymlinkNoFollow, clinux_STATX_BASIC_STATS | clinux_STATX_BTIME, &raw) }
        return Statx(raw)
    }

    static func fstat(_ fd: Int32) throws -> stat {
        var st = stat()
        try check { Glibc.fstat(fd, &st) }
        return st
    }

    /// pread until `buffer` is full or end of file; returns the count read.
    static func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        guard offset <= UInt64(Int64.max) else { throw Errno.EINVAL }
        var done = 0
        while done < buffer.count {
            let n = try check { pread(fd, base + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// pwrite all of `buffer` (a zero-length write count is reported as EIO).
    static func writeFully(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard let base = buffer.baseAddress else { return }
        guard offset <= UInt64(Int64.max) else { throw Errno.EFBIG }
        var done = 0
        while done < buffer.count {
            let n = try check { pwrite(fd, base + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n == 0 { throw Errno.EIO }
            done += n
        }
    }

    static func truncate(_ fd: Int32, to size: UInt64) throws {
        guard size <= UInt64(Int64.max) else { throw Errno.EFBIG }
        try check { ftruncate(fd, off_t(size)) }
    }

    /// Sets atime/mtime of `fd` (any FD, O_PATH included).
    static func setTimes(_ fd: Int32, atime: timespec, mtime: timespec) throws {
        try check {
            clinux_futimens_empty_path(fd, 1, Int64(atime.tv_sec), Int64(atime.tv_nsec), 1, Int64(mtime.tv_sec), Int64(mtime.tv_nsec))
        }
    }
}
