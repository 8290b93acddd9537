import CLinux
import Glibc
import Lisafs
import Logging

/// Plaintext passthrough of a host directory (like gVisor's runsc/fsgofer).
///
/// Confinement: the root directory is opened once; every later host call is
/// relative to an FD obtained by walking from it one validated component at a
/// time with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW, so no client-supplied path is
/// ever resolved and symlinks are never followed on the host. Files are
/// re-opened with other modes through /proc/self/fd/N, which names the already
/// resolved file, never a path.
public final class HostProvider: Provider, @unchecked Sendable {
    public struct Options: Sendable {
        /// Allow Connect to host sockets found in the tree, and BindAt/Listen/Accept.
        public var allowSockets: Bool
        /// Allow opening named pipes (always opened non-blocking so no RPC blocks).
        public var allowFifos: Bool
        /// Allow opening character devices found in the tree (off: EPERM).
        public var allowCharacterDevices: Bool

        public init(allowSockets: Bool = true, allowFifos: Bool = true, allowCharacterDevices: Bool = false) {
            self.allowSockets = allowSockets
            self.allowFifos = allowFifos
            self.allowCharacterDevices = allowCharacterDevices
        }
    }

    public let options: Options
    let rootFD: Int32
    let procSelfFD: Int32
    let logger: Logger

    /// Opens `rootPath` (trusted configuration; may itself contain symlinks),
    /// which must be a directory.
    public init(rootPath: String, options: Options = Options(), logger: Logger = Logger(label: "sealgofer.host")) throws {
        self.options = options
        self.logger = logger
        let root = try Host.check { clinux_openat(AT_FDCWD, rootPath, O_RDONLY | Host.directory | Host.closeOnExec, 0) }
        do {
            procSelfFD = try Host.check { clinux_openat(AT_FDCWD, "/proc/self/fd", O_RDONLY | Host.directory | Host.closeOnExec, 0) }
        } catch {
            Host.close(root)
            throw error
        }
        rootFD = root
    }

    deinit {
        Host.close(rootFD)
        Host.close(procSelfFD)
    }

    public var supportedMIDs: Set<MID> {
        var mids = Set(MID.allCases)
        mids.remove(.error)
        if !options.allowSockets {
            mids.subtract([.bindAt, .listen, .accept, .connect, .connectWithCreds])
        }
        return mids
    }

    public var allowsModifyingDeleted: Bool { true }

    // MARK: Reopening through /proc/self/fd

    /// Opens the file `fd` refers to again with `flags` (O_CLOEXEC added). The
    /// magic link names the already-resolved file, so no path is re-walked.
    func reopen(_ fd: Int32, flags: Int32) throws -> Int32 {
        try withCBytes(Array(String(fd).utf8)) { name in
            try Host.check { clinux_openat(procSelfFD, name, flags | Host.closeOnExec, 0) }
        }
    }

    /// "/proc/self/fd/N", for the few calls that only take paths.
    func procPath(_ fd: Int32) -> [UInt8] { Array("/proc/self/fd/\(fd)".utf8) }

    /// Turns a freshly obtained O_PATH FD into a node: directories and regular
    /// files are reopened readable when possible; the O_PATH FD is consumed.
    func makeNode(pathFD: Int32) throws -> Created<Node> {
        let stat: Statx
        do {
            stat = try Host.stat(pathFD)
            try checkSupported(FileType.of(stat))
        } catch {
            Host.close(pathFD)
            throw error
        }
        let type = FileType.of(stat)
        if type == FileType.directory || type == FileType.regular {
            let extra = type == FileType.directory ? Host.directory : Host.nonBlocking
            if let readable = try? reopen(pathFD, flags: O_RDONLY | extra) {
                Host.close(pathFD)
                return Created(node: Node(fd: readable, fileType: type, isPathOnly: false), stat: stat)
            }
        }
        return Created(node: Node(fd: pathFD, fileType: type, isPathOnly: true), stat: stat)
    }

    /// Block devices never appear in the served tree.
    func checkSupported(_ type: UInt32) throws {
        if type == FileType.block { throw Errno.EPERM }
    }

    // MARK: Tree

    public func mountRoot() throws -> Created<Node> {
        let fd = try Host.check { clinux_openat(rootFD, ".", Host.openPath | Host.closeOnExec, 0) }
        return try makeNode(pathFD: fd)
    }

    public func walk(_ dir: Node, _ name: FileName) throws -> Created<Node> {
        try name.withCString { cName in
            if let direct = try openReadableDirectly(dir.fd, cName) { return direct }
            return try makeNode(pathFD: try Host.check {
                clinux_openat(dir.fd, cName, Host.openPath | Host.closeOnExec | Host.noFollow, 0)
            })
        }
    }

    /// Walk's fast path (3 syscalls instead of O_PATH open + statx + /proc
    /// reopen + close): statx the name, and when it is a directory or a
    /// regular file open it readable by name. A directory is opened with
    /// O_DIRECTORY, so the open itself refuses anything else; a regular file
    /// is opened O_NONBLOCK | O_NOCTTY and its FD re-checked. Only a host-side
    /// swap to a device between the two calls could open one (the sandbox
    /// cannot create devices); FIFOs open harmlessly non-blocking. nil: take
    /// the O_PATH path (other types, vanished/changed names, EACCES, ...).
    /// ENOENT from the statx is final, as the O_PATH open would report it too.
    func openReadableDirectly(_ dirFD: Int32, _ cName: UnsafePointer<CChar>) throws -> Created<Node>? {
        var probe = clinux_statx()
        let statxType: UInt32 = 0x1 // STATX_TYPE (linux/stat.h): only the file type is needed here
        do {
            try Host.check { clinux_statx(dirFD, cName, Host.atSymlinkNoFollow, statxType, &probe) }
        } catch let error as Errno where error == .ENOENT {
            throw error
        } catch {
            return nil
        }
        let type = FileType.of(UInt32(probe.mode))
        let flags: Int32
        if type == FileType.directory {
            flags = O_RDONLY | Host.directory
        } else if type == FileType.regular {
            flags = O_RDONLY | Host.nonBlocking | Host.noControllingTTY
        } else {
            return nil
        }
        guard let fd = try? Host.check({ clinux_openat(dirFD, cName, flags | Host.noFollow | Host.closeOnExec, 0) }) else {
            return nil
        }
        guard let stat = try? Host.stat(fd), FileType.of(stat) == type else {
            Host.close(fd)
            return nil
        }
        return Created(node: Node(fd: fd, fileType: type, isPathOnly: false), stat: stat)
    }

    public func stat(_ node: Node) throws -> Statx { try Host.stat(node.fd) }

    public func stat(openFile: OpenFile) throws -> Statx { try Host.stat(openFile.fd) }

    public func close(node: Node) { node.closeAll() }

    public func statfs(_ node: Node) throws -> StatFS {
        var raw = clinux_statfs()
        try Host.check { clinux_fstatfs(node.fd, &raw) }
        return StatFS(type: raw.type, blockSize: raw.bsize, blocks: raw.blocks, blocksFree: raw.bfree,
                      blocksAvailable: raw.bavail, files: raw.files, filesFree: raw.ffree, nameLength: raw.namelen)
    }

    public func readlink(_ node: Node) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = try buffer.withUnsafeMutableBytes { raw in
            try Host.check { readlinkat(node.fd, "", raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count) }
        }
        return Array(buffer.prefix(n))
    }
}
