#if canImport(Glibc)
import Glibc
#endif

/// Cheap look-ups for the provider's stat and unlink paths (added by the SealedProvider work):
/// they read a file's header (and sidecar) without registering a `SealedFile` handle.
extension SealedStore {
    /// The file ID in the (authenticated) header of the ciphertext file behind `descriptor`
    /// (any FD of it, O_PATH included).
    public func fileID(descriptor: Int32) throws -> FileID {
        try checkOpen()
        let fd = try readableReopen(of: descriptor)
        defer { Glibc.close(fd) }
        return try FileState.readHeader(store: self, fd: fd).0.fileID
    }

    /// File ID and committed plaintext size of the ciphertext file behind `descriptor` (any FD of
    /// it, O_PATH included). When an interrupted commit left a journal, the file is opened fully
    /// (which replays it) so the size reported is the one every later reader sees.
    public func committedState(descriptor: Int32) throws -> (id: FileID, size: UInt64) {
        try checkOpen()
        let fd = try readableReopen(of: descriptor)
        defer { Glibc.close(fd) }
        return try committedState(descriptor: descriptor, readable: fd)
    }

    /// `committedState` with a readable descriptor (O_RDONLY) of the same file that the caller
    /// already holds, e.g. opened by name and checked to be the same inode: this saves the
    /// reopen through /proc, the dearest step of a stat that misses every cache.
    public func committedState(descriptor: Int32, readable fd: Int32) throws -> (id: FileID, size: UInt64) {
        if let settled = try settledCommittedState(readable: fd) { return settled }
        let file = try openFile(descriptor: descriptor)
        defer { file.close() }
        return (file.id, file.committedSize)
    }

    /// File ID and committed size read from the header and sidecar through `fd` (O_RDONLY), or
    /// nil when an interrupted commit left a journal: only a full open (which replays it) can say.
    /// Reads only; safe beside any other use of the store (the provider's read-ahead of sizes).
    public func settledCommittedState(readable fd: Int32) throws -> (id: FileID, size: UInt64)? {
        try checkOpen()
        let (header, keys) = try FileState.readHeader(store: self, fd: fd)
        var journal = stat()
        if fstatat(layout.journalFD, StoreLayout.journalName(header.fileID), &journal, AT_SYMLINK_NOFOLLOW) == 0 {
            return nil
        }
        let sidecar = try FileState.readSidecar(store: self, header: header, keys: keys)
        return (header.fileID, sidecar.committedSize)
    }

    /// A fresh O_RDONLY descriptor of the same file, through /proc/self/fd (works for O_PATH FDs
    /// and for files already unlinked).
    private func readableReopen(of descriptor: Int32) throws -> Int32 {
        let fd = Glibc.open("/proc/self/fd/\(descriptor)", O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw SealedStoreError.io("reopen descriptor", errno) }
        return fd
    }
}
