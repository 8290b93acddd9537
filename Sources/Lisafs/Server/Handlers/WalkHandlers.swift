/// Walk and WalkStat.
extension Connection {
    /// Walk: one control FD per component walked. Stops early (successfully) at
    /// a symlink or a missing component, reporting why in the status; any other
    /// failure undoes the FDs created so far. Read guarantee on each directory
    /// walked from, rename lock held for the whole walk.
    func walk(_ request: WalkReq) throws -> Response {
        let names = try request.path.map { try FileName(validating: $0) }
        guard 3 + names.count * Inode.encodedSize <= Int(maxMessageSize) else { throw Errno.EIO }
        return try withDirectory(request.dirFD) { start in
            var status = WalkStatus.success
            var inodes: [Inode] = []
            try server.renameLock.withReadLock {
                // References held locally on the FDs we walk through, so a hostile
                // Close of a just-issued FDID on another channel cannot free them.
                var held: [ControlFD<P>] = []
                defer { for fd in held { fd.release(renameLockHeld: true) } }
                var current = start
                do {
                    for name in names {
                        if current.isSymlink {
                            status = .componentSymlink
                            break
                        }
                        guard current.isDirectory else { throw Errno.ENOTDIR }
                        let node = current.node
                        node.opLock.lockRead()
                        if node.isDeleted {
                            // Its host position may now hold something hazardous.
                            node.opLock.unlock()
                            status = .componentDoesNotExist
                            break
                        }
                        let child: (ControlFD<P>, Inode)
                        do {
                            let found = try provider.walk(current.handle, name)
                            child = try registerChild(of: node, name: name, handle: found.node, stat: found.stat)
                            node.opLock.unlock()
                        } catch let error as Errno where error == .ENOENT {
                            node.opLock.unlock()
                            status = .componentDoesNotExist
                            break
                        } catch {
                            node.opLock.unlock()
                            throw error
                        }
                        child.0.retain()
                        held.append(child.0)
                        inodes.append(child.1)
                        current = child.0
                    }
                } catch {
                    unregister(inodes.map(\.controlFD))
                    throw error
                }
            }
            return Response(.walk, WalkResp(status: status, inodes: inodes))
        }
    }

    /// WalkStat: like Walk but returns only stats and keeps no FDs. A leading
    /// empty component asks for the starting FD's own stat (then the start may
    /// be a non-directory).
    func walkStat(_ request: WalkReq) throws -> Response {
        var path = request.path
        let includeStart = path.first?.isEmpty == true
        if includeStart { path.removeFirst() }
        let names = try path.map { try FileName(validating: $0) }
        guard 2 + request.path.count * Statx.encodedSize <= Int(maxMessageSize) else { throw Errno.EIO }
        return try withControl(request.dirFD) { start in
            if !start.isDirectory && !names.isEmpty { throw Errno.ENOTDIR }
            var stats: [Statx] = []
            try server.renameLock.withReadLock {
                if includeStart {
                    stats.append(try start.node.opLock.withReadLock { try provider.stat(start.handle) })
                }
                // The node/handle we stand on; temporaries are dropped as we go.
                var currentNode = start.node
                var currentHandle = start.handle
                var isTemporary = false
                var currentIsDirectory = start.isDirectory
                func dropCurrent() {
                    guard isTemporary else { return }
                    provider.close(node: currentHandle)
                    currentNode.decRef()
                    isTemporary = false
                }
                defer { dropCurrent() }
                for name in names {
                    guard currentIsDirectory else { throw Errno.ENOTDIR }
                    currentNode.opLock.lockRead()
                    if currentNode.isDeleted {
                        currentNode.opLock.unlock()
                        break
                    }
                    let found: Created<P.Node>
                    do {
                        found = try provider.walk(currentHandle, name)
                    } catch let error as Errno where error == .ENOENT {
                        currentNode.opLock.unlock()
                        break
                    } catch {
                        currentNode.opLock.unlock()
                        throw error
                    }
                    let childNode = currentNode.childForWalk(name.bytes)
                    currentNode.opLock.unlock()
                    dropCurrent()
                    currentNode = childNode
                    currentHandle = found.node
                    isTemporary = true
                    currentIsDirectory = FileType.of(found.stat) == FileType.directory
                    stats.append(found.stat)
                    if FileType.of(found.stat) == FileType.symlink { break }
                }
            }
            return Response(.walkStat, WalkStatResp(stats: stats))
        }
    }
}
