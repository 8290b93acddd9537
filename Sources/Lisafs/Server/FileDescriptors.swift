import Atomics

/// The three kinds of lisafs FDs a connection hands out. Each wraps a provider
/// handle and is reference counted explicitly: the connection's FD table holds
/// one reference, and every in-flight request using the FD holds one more, so a
/// Close on one channel never pulls the handle from under a request running on
/// another. The provider handle is closed when the last reference goes.

/// A control FD: a walked-to file (gVisor: ControlFD). Holds a reference on
/// its `PathNode`.
final class ControlFD<P: Provider>: @unchecked Sendable {
    let node: PathNode
    let handle: P.Node
    /// S_IFMT type of the file, fixed at creation.
    let fileType: UInt32
    private let provider: P
    private let renameLock: RWLock
    private let refs = ManagedAtomic<Int>(1)

    /// Creates the FD with one reference (to hand to the FD table). Takes over
    /// the caller's reference on `node`.
    init(node: PathNode, handle: P.Node, fileType: UInt32, provider: P, renameLock: RWLock) {
        self.node = node
        self.handle = handle
        self.fileType = fileType
        self.provider = provider
        self.renameLock = renameLock
    }

    var isDirectory: Bool { fileType == FileType.directory }
    var isRegular: Bool { fileType == FileType.regular }
    var isSymlink: Bool { fileType == FileType.symlink }
    var isSocket: Bool { fileType == FileType.socket }

    func retain() { refs.wrappingIncrement(ordering: .relaxed) }

    /// Drops a reference. At zero the node reference is dropped (which needs the
    /// rename lock: pass `renameLockHeld` when the caller already holds it, shared
    /// or exclusive) and the provider handle is closed.
    func release(renameLockHeld: Bool = false) {
        guard refs.wrappingDecrementThenLoad(ordering: .acquiringAndReleasing) == 0 else { return }
        if renameLockHeld {
            node.decRef()
        } else {
            renameLock.withReadLock { node.decRef() }
        }
        provider.close(node: handle)
    }

    var referenceCount: Int { refs.load(ordering: .relaxed) }
}

/// An open FD (gVisor: OpenFD): the result of OpenAt/OpenCreateAt, with the
/// access mode it was opened with. Holds a reference on its control FD.
final class OpenFD<P: Provider>: @unchecked Sendable {
    let control: ControlFD<P>
    let handle: P.OpenFile
    let flags: OpenFlags
    private let provider: P
    private let refs = ManagedAtomic<Int>(1)

    /// Takes a new reference on `control`.
    init(control: ControlFD<P>, handle: P.OpenFile, flags: OpenFlags, provider: P) {
        control.retain()
        self.control = control
        self.handle = handle
        self.flags = flags
        self.provider = provider
    }

    var isReadable: Bool { flags.isReadable }
    var isWritable: Bool { flags.isWritable }

    func retain() { refs.wrappingIncrement(ordering: .relaxed) }

    /// Drops a reference; at zero closes the provider handle, then releases the
    /// control FD (so a provider always sees an open file closed before its node).
    func release(renameLockHeld: Bool = false) {
        guard refs.wrappingDecrementThenLoad(ordering: .acquiringAndReleasing) == 0 else { return }
        provider.close(openFile: handle)
        control.release(renameLockHeld: renameLockHeld)
    }
}

/// A bound-socket FD (gVisor: BoundSocketFD), from BindAt. Holds a reference
/// on the control FD of the socket file.
final class BoundSocketFD<P: Provider>: @unchecked Sendable {
    let control: ControlFD<P>
    let handle: P.BoundSocket
    private let provider: P
    private let refs = ManagedAtomic<Int>(1)

    init(control: ControlFD<P>, handle: P.BoundSocket, provider: P) {
        control.retain()
        self.control = control
        self.handle = handle
        self.provider = provider
    }

    func retain() { refs.wrappingIncrement(ordering: .relaxed) }

    func release(renameLockHeld: Bool = false) {
        guard refs.wrappingDecrementThenLoad(ordering: .acquiringAndReleasing) == 0 else { return }
        provider.close(boundSocket: handle)
        control.release(renameLockHeld: renameLockHeld)
    }
}

/// Any FD in a connection's table.
enum FDEntry<P: Provider> {
    case control(ControlFD<P>)
    case open(OpenFD<P>)
    case boundSocket(BoundSocketFD<P>)

    func retain() {
        switch self {
        case .control(let fd): fd.retain()
        case .open(let fd): fd.retain()
        case .boundSocket(let fd): fd.retain()
        }
    }

    func release(renameLockHeld: Bool = false) {
        switch self {
        case .control(let fd): fd.release(renameLockHeld: renameLockHeld)
        case .open(let fd): fd.release(renameLockHeld: renameLockHeld)
        case .boundSocket(let fd): fd.release(renameLockHeld: renameLockHeld)
        }
    }
}
