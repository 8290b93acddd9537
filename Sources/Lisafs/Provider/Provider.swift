/// The storage backend a lisafs `Server` serves.
///
/// The server owns the protocol: FD tables, the node tree and its locks, name
/// validation, the readonly policy, FD kinds, and wire encoding. A provider only
/// implements per-file operations on handles it created itself:
///
/// - `Node`: one per control FD (gVisor: ControlFDImpl). Created by `mountRoot`,
///   `walk`, `mkdir`, `mknod`, `symlink`, `link`, `openCreate` and `bind`;
///   released exactly once by `close(node:)`. Several nodes may refer to the same
///   file (each Walk creates a new one).
/// - `OpenFile`: one per open FD (gVisor: OpenFDImpl). Created by `open` and
///   `openCreate`; released exactly once by `close(openFile:)`, which always comes
///   before the `close(node:)` of the node it was opened on.
/// - `BoundSocket`: one per bound-socket FD, from `bind`; released by
///   `close(boundSocket:)` before its node.
///
/// Locking (all provided by the server; "read"/"write" are the node's operation
/// lock held shared/exclusive, all under the server-wide rename lock held shared;
/// "global" is the rename lock held exclusively):
/// methods may run concurrently on different threads, but never concurrently
/// with a writer on the same node. Providers must still make their own shared
/// bookkeeping (caches, per-inode state) thread-safe, because two nodes for the
/// same file are locked independently.
///
/// Guarantees the server gives every provider, so providers need not re-check:
/// names are `FileName`s (validated); handles are of the right kind (a `dir`
/// argument's node was created with directory type, `readlink` gets a symlink,
/// `connect` a socket); mutations never reach a provider of a readonly mount
/// (EROFS); nodes unlinked through this server are not walked from or created in
/// (EINVAL/ENOENT), and are only passed to `setStat`/`allocate` when
/// `allowsModifyingDeleted` is true.
///
/// Errors: throw `Errno`; anything else is reported to the client as EIO.
/// Host FDs: a provider must never operate by path outside the tree. Every
/// returned `donatedFD` becomes the server's to send and close; when a method
/// throws it must not leak FDs it opened.
public protocol Provider: AnyObject {
    associatedtype Node: AnyObject
    associatedtype OpenFile: AnyObject
    associatedtype BoundSocket: AnyObject = NoBoundSocket

    // MARK: Capabilities

    /// MIDs this provider implements. The server always adds Mount, Channel,
    /// Close (which it implements itself) and answers EOPNOTSUPP for any MID not
    /// listed here; Mount's response advertises exactly this set.
    var supportedMIDs: Set<MID> { get }

    /// A readonly provider makes every mount readonly (the server answers EROFS
    /// to all mutations whatever the mount option).
    var isReadonly: Bool { get }

    /// Whether `setStat` and `allocate` may be called on files unlinked while
    /// open (true for FD-based backends; false makes the server answer EINVAL).
    var allowsModifyingDeleted: Bool { get }

    // MARK: Tree

    /// Returns a node for the root of the served tree and its stat. Called once
    /// per Mount; the node is closed like any other. Lock: read on the root.
    func mountRoot() throws -> Created<Node>

    /// Looks up one component in directory `dir` without following a final
    /// symlink (the client walks symlinks itself). Throws ENOENT when absent.
    /// Lock: read on `dir`.
    func walk(_ dir: Node, _ name: FileName) throws -> Created<Node>

    /// Stat of the file behind a node. Sealed backends report the live
    /// (plaintext) size here. Lock: read on the node.
    func stat(_ node: Node) throws -> Statx

    /// Stat through an open FD (FStat on an open FD). Lock: read on its node.
    func stat(openFile: OpenFile) throws -> Statx

    /// Applies the attribute changes in `changes.mask` (subset of
    /// `SetStatChanges.supportedMask`), continuing past individual failures and
    /// reporting them in the result. A size change must be visible to every open
    /// file of the same inode (sealed: its scratch). Lock: write on the node.
    func setStat(_ node: Node, _ changes: SetStatChanges) -> SetStatResult

    /// Releases a node handle (and its host resources). Called exactly once,
    /// after every open file and bound socket opened on it is closed.
    /// Lock: none (may run on any thread, with or without the rename lock).
    func close(node: Node)

    // MARK: Opening and open files

    /// Opens the file behind `node` (never a symlink; directories only with
    /// O_RDONLY and no O_TRUNC). May return a host FD opened with the same access
    /// mode for the client to use directly. Lock: read on the node.
    func open(_ node: Node, flags: OpenFlags) throws -> Opened<OpenFile>

    /// Creates a regular file `name` in `dir` exclusively (O_CREAT|O_EXCL) with
    /// `attributes`, and opens it with `flags`. On failure nothing may remain
    /// (the file is removed again). Lock: write on `dir`.
    func openCreate(in dir: Node, _ name: FileName, attributes: CreateAttributes,
                    flags: OpenFlags) throws -> CreatedOpen<Node, OpenFile>

    /// pread: fills up to `buffer.count` bytes from `offset`; returns the count
    /// (0 at end of file). The server guarantees the file was opened readable.
    /// Lock: read on the node.
    func read(_ file: OpenFile, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int

    /// pwrite: writes `buffer` at `offset`, returns the count written. The server
    /// guarantees the file was opened writable. Lock: write on the node.
    func write(_ file: OpenFile, from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int

    /// Flush (sent by the client before Close of an open FD whose data it may
    /// have written through a donated FD). Sealed: seal the scratch's changes.
    /// Lock: read on the node.
    func flush(_ file: OpenFile) throws

    /// fsync(2) semantics: make the file's data durable. Lock: read on the node.
    func fsync(_ file: OpenFile) throws

    /// fallocate(2) with the client's mode/offset/length. The server guarantees
    /// the file was opened writable. Lock: write on the node.
    func allocate(_ file: OpenFile, mode: UInt64, offset: UInt64, length: UInt64) throws

    /// Reads directory entries from an open directory, continuing from its
    /// position (from the start when `restart`). Must stop before the summed
    /// `hostRecordLength` of the returned entries exceeds `byteBudget` and must
    /// not skip entries it does not return (the position advances only past
    /// returned ones). An empty result means end of directory. Include "." and
    /// ".." as the host does. Lock: read on the node.
    func getdents(_ dir: OpenFile, byteBudget: Int, restart: Bool) throws -> [DirectoryEntry]

    /// Releases an open file. Sealed: last chance to commit the scratch and drop
    /// it. Called exactly once, when the client closes the FD or the connection
    /// ends. Lock: none.
    func close(openFile: OpenFile)

    // MARK: Creating and removing

    /// mkdirat + chown. Lock: write on `dir`.
    func mkdir(in dir: Node, _ name: FileName, attributes: CreateAttributes) throws -> Created<Node>

    /// mknodat + chown. `attributes.fileType` is the S_IFMT type (providers may
    /// refuse types they do not support with EPERM). Lock: write on `dir`.
    func mknod(in dir: Node, _ name: FileName, attributes: CreateAttributes,
               major: UInt32, minor: UInt32) throws -> Created<Node>

    /// symlinkat + lchown. `target` is arbitrary bytes (no NUL; ≤ 4095 bytes).
    /// Lock: write on `dir`.
    func symlink(in dir: Node, _ name: FileName, target: [UInt8], uid: UID, gid: GID) throws -> Created<Node>

    /// Hard-links the file behind `target` (never a directory) as `name` in `dir`.
    /// Lock: write on `dir`, read on `target`.
    func link(_ target: Node, in dir: Node, _ name: FileName) throws -> Created<Node>

    /// unlinkat(2); `flags` is 0 or AT_REMOVEDIR. Lock: write on `dir` and on the
    /// child's node if the server knows one.
    func unlink(in dir: Node, _ name: FileName, flags: UInt32) throws

    /// renameat2(2) with `flags` (0, RENAME_NOREPLACE, RENAME_EXCHANGE). Lock: global.
    func rename(from oldDir: Node, _ oldName: FileName, to newDir: Node, _ newName: FileName, flags: UInt32) throws

    /// readlink of a symlink node (at most 4095 bytes). Lock: read on the node.
    func readlink(_ node: Node) throws -> [UInt8]

    /// fstatfs of the filesystem holding the node. Lock: read on the node.
    func statfs(_ node: Node) throws -> StatFS

    // MARK: Extended attributes (names: 1...255 bytes without NUL; values ≤ 64 KiB)
    // The server passes only names in the `user.` namespace and drops every
    // other name from `listXattr` results (security.*, trusted.*, system.*
    // carry host privileges); providers need not check.

    /// fgetxattr. `size` 0 means "any size"; otherwise ERANGE if larger. Lock: read.
    func getXattr(_ node: Node, name: [UInt8], size: UInt32) throws -> [UInt8]
    /// fsetxattr with XATTR_CREATE/XATTR_REPLACE `flags`. Lock: write.
    func setXattr(_ node: Node, name: [UInt8], value: [UInt8], flags: UInt32) throws
    /// flistxattr; `size` is the client's buffer hint (may be ignored). Lock: read.
    func listXattr(_ node: Node, size: UInt64) throws -> [[UInt8]]
    /// fremovexattr. Lock: write.
    func removeXattr(_ node: Node, name: [UInt8]) throws

    // MARK: Unix domain sockets

    /// Creates an AF_UNIX socket of `socketType` and connects it to the socket
    /// file behind `node`; returns the connected FD, which the server donates.
    /// Must not block (a listener's backlog may be full forever): EAGAIN then.
    /// Lock: read on the node.
    func connect(_ node: Node, socketType: UInt32) throws -> Int32

    /// Creates, binds (as `name` in `dir`) and chowns an AF_UNIX socket; see
    /// `BoundSocketCreated` for the FD to donate. Lock: write on `dir`.
    func bind(in dir: Node, _ name: FileName, socketType: UInt32,
              attributes: CreateAttributes) throws -> BoundSocketCreated<Node, BoundSocket>

    /// listen(2) on a bound socket. Lock: read on its node.
    func listen(_ socket: BoundSocket, backlog: Int32) throws

    /// accept4(2), non-blocking whatever the client does (EAGAIN when nothing
    /// is pending): returns the new connection's FD (donated to the client) and
    /// the peer address (may be empty). Lock: read on its node.
    func accept(_ socket: BoundSocket) throws -> (fd: Int32, peerAddress: [UInt8])

    /// Makes any call blocked on the socket return at once (HostProvider:
    /// shutdown(2)); `close(boundSocket:)` still follows. Called at connection
    /// teardown, before the server waits for the connection's serving threads:
    /// a last resort should `listen`/`accept` ever block, so a hang-up still
    /// ends the connection. Lock: none (may overlap an `accept` on the socket).
    func interrupt(boundSocket: BoundSocket)

    /// Releases a bound socket. Lock: none.
    func close(boundSocket: BoundSocket)
}

// Defaults so that a provider without sockets or xattrs stays short.
extension Provider {
    public var isReadonly: Bool { false }
    public var allowsModifyingDeleted: Bool { false }

    public func getXattr(_ node: Node, name: [UInt8], size: UInt32) throws -> [UInt8] { throw Errno.EOPNOTSUPP }
    public func setXattr(_ node: Node, name: [UInt8], value: [UInt8], flags: UInt32) throws { throw Errno.EOPNOTSUPP }
    public func listXattr(_ node: Node, size: UInt64) throws -> [[UInt8]] { throw Errno.EOPNOTSUPP }
    public func removeXattr(_ node: Node, name: [UInt8]) throws { throw Errno.EOPNOTSUPP }

    public func connect(_ node: Node, socketType: UInt32) throws -> Int32 { throw Errno.ECONNREFUSED }
    public func bind(in dir: Node, _ name: FileName, socketType: UInt32,
                     attributes: CreateAttributes) throws -> BoundSocketCreated<Node, BoundSocket> { throw Errno.EPERM }
    public func listen(_ socket: BoundSocket, backlog: Int32) throws { throw Errno.EOPNOTSUPP }
    public func accept(_ socket: BoundSocket) throws -> (fd: Int32, peerAddress: [UInt8]) { throw Errno.EOPNOTSUPP }
    public func interrupt(boundSocket: BoundSocket) {}
    public func close(boundSocket: BoundSocket) {}
}
