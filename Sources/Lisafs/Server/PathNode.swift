import Atomics

/// One position in the served tree, shared by every control FD (on any
/// connection of the same server) that refers to the file at that path.
///
/// The node tree exists for safety, not caching: its locks give each operation
/// the concurrency guarantee the lisafs README demands, so that a client racing
/// renames/unlinks against walks on other channels can never make the server act
/// on a file that was swapped for something else (e.g. a symlink) underneath it.
///
/// Lock order: server rename lock → ancestor `opLock` → descendant `opLock` →
/// `childrenLock`. `name` and `parent` change only under the rename lock held for
/// writing, so reading them needs the rename lock held (shared is enough).
///
/// Reference counting (explicit, because a node must leave its parent's child
/// map at a well-defined moment under the right locks): each control FD on the
/// node holds one reference and each child node holds one on its parent. The
/// count of a non-root node changes only under its parent's `childrenLock`, so a
/// lookup can never revive a node that is being removed.
final class PathNode: @unchecked Sendable {
    /// Shared for operations reading the file, exclusive for those changing it
    /// (and for creating/deleting children of a directory).
    let opLock = RWLock()

    /// Protects `children` and the reference counts of the children.
    private let childrenLock = Mutex()
    private var children: [[UInt8]: PathNode] = [:]

    /// Set once the file was unlinked (or replaced by a rename) through this
    /// server. Operations on a deleted node must not walk from or create in it:
    /// its host position may have been reused by something hazardous.
    private let deletedFlag = ManagedAtomic<Bool>(false)

    /// Guarded by the server's rename lock.
    private(set) var name: [UInt8]
    private(set) var parent: PathNode?

    /// For a non-root node, guarded by `parent.childrenLock`; root uses `rootRefsLock`.
    private var refs: Int
    private let rootRefsLock = Mutex()

    /// Makes a root node holding one reference (the server's).
    init() {
        name = []
        parent = nil
        refs = 1
    }

    /// Makes a child with one reference, owned by the caller. Caller holds
    /// `parent.childrenLock`.
    private init(child name: [UInt8], of parent: PathNode) {
        self.name = name
        self.parent = parent
        refs = 1
    }

    var isRoot: Bool { parent == nil }
    var isDeleted: Bool { deletedFlag.load(ordering: .acquiring) }

    // MARK: References

    /// Takes another reference. The caller must already hold one (directly or
    /// through a control FD), so the node cannot be concurrently destroyed.
    func incRef() {
        if let parent {
            parent.childrenLock.withLock { refs += 1 }
        } else {
            rootRefsLock.withLock { refs += 1 }
        }
    }

    /// Drops a reference; at zero the node leaves its parent's map and drops its
    /// reference on the parent, and so on up the chain. Precondition: the
    /// server's rename lock is held (shared or exclusive) because `parent` is read.
    ///
    /// Iterative, not recursive: a client can build a chain of any depth (one
    /// MkdirAt per level), and releasing its deepest FD may free every level
    /// at once; one stack frame per level would overflow the serving thread.
    func decRef() {
        var node = self
        while true {
            guard let parent = node.parent else {
                node.rootRefsLock.withLock { node.refs -= 1 }
                return
            }
            let destroyed: Bool = parent.childrenLock.withLock {
                node.refs -= 1
                guard node.refs == 0 else { return false }
                // A node unlinked or replaced by a rename has already left the map,
                // and a new file may now live under the same name: only remove self.
                if let current = parent.children[node.name], current === node {
                    parent.children[node.name] = nil
                }
                return true
            }
            guard destroyed else { return }
            node = parent
        }
    }

    /// Frees the chain of ancestors that die with this node one by one.
    /// A naive release of `parent` from this deinit would run the parent's
    /// deinit, which releases its own parent, and so on: one nested release
    /// per level of a client-built chain. (Swift 6 compilers already emit such
    /// a loop for a self-typed stored property; this makes it explicit rather
    /// than an optimisation we depend on.) Each ancestor is detached only when
    /// this deinit holds its last reference, so nobody else can be looking at it.
    deinit {
        var next = parent
        parent = nil
        while var ancestor = next {
            next = nil
            guard isKnownUniquelyReferenced(&ancestor) else { break }
            next = ancestor.parent
            ancestor.parent = nil
            // `ancestor` is released here with no parent left to cascade into.
        }
    }

    /// Current reference count (tests and diagnostics).
    var referenceCount: Int {
        if let parent { return parent.childrenLock.withLock { refs } }
        return rootRefsLock.withLock { refs }
    }

    // MARK: Children

    /// Returns the child node for `name`, creating it if needed, with one new
    /// reference for the caller. Precondition: rename lock held (shared) and this
    /// node's `opLock` held (shared) so that no unlink/create races the lookup.
    func childForWalk(_ name: [UInt8]) -> PathNode {
        childrenLock.withLock {
            if let existing = children[name] {
                existing.refs += 1
                return existing
            }
            let child = PathNode(child: name, of: self)
            children[name] = child
            incRefLocked()
            return child
        }
    }

    /// The child node currently known for `name`, if any (no reference taken).
    /// Precondition: rename lock held; the result stays valid while the caller
    /// keeps this node's `opLock` exclusively (nobody can drop it from the map).
    func existingChild(_ name: [UInt8]) -> PathNode? {
        childrenLock.withLock { children[name] }
    }

    /// Number of children currently tracked (tests and diagnostics).
    var childCount: Int { childrenLock.withLock { children.count } }

    /// Reference taken on self on behalf of a new child; caller holds our
    /// `childrenLock`, so for a non-root node we must take the parent's lock.
    private func incRefLocked() {
        if let parent {
            parent.childrenLock.withLock { refs += 1 }
        } else {
            rootRefsLock.withLock { refs += 1 }
        }
    }

    /// Detaches `name` from this directory's map (after an unlink or when a rename
    /// replaced it) and returns it. Precondition: this node's `opLock` held
    /// exclusively or the rename lock held exclusively.
    @discardableResult
    func detachChild(_ name: [UInt8]) -> PathNode? {
        childrenLock.withLock {
            let child = children[name]
            children[name] = nil
            return child
        }
    }

    /// Marks this node and everything below it deleted. Children are not locked
    /// (lock order forbids it); a deleted directory normally has no children left,
    /// and if the host tree was changed behind our back this is best effort.
    /// Uses an explicit work list: the subtree may be arbitrarily deep.
    func markDeletedRecursively() {
        var pending: [PathNode] = [self]
        while let node = pending.popLast() {
            node.deletedFlag.store(true, ordering: .releasing)
            pending.append(contentsOf: node.childrenLock.withLock { Array(node.children.values) })
        }
    }

    /// Moves this node to `newName` under `newParent` after a successful rename,
    /// transferring its reference on the old parent. Precondition: rename lock
    /// held exclusively and `self` already detached from the old parent's map.
    func move(to newParent: PathNode, as newName: [UInt8]) {
        // Nobody else holds the rename lock, so nothing can touch `refs` (whose
        // guard is the parent's lock) while the parent changes.
        let oldParent = parent
        newParent.childrenLock.withLock { newParent.children[newName] = self }
        newParent.incRef()
        name = newName
        parent = newParent
        oldParent?.decRef()
    }

    /// Path from the root, for logs only (never used to reach the host).
    /// Precondition: rename lock held.
    var debugPath: String {
        var components: [String] = []
        var node: PathNode? = self
        while let current = node, let up = current.parent {
            components.append(String(decoding: current.name, as: UTF8.self))
            node = up
        }
        return "/" + components.reversed().joined(separator: "/")
    }
}
