/// PRead, PWrite, FSync, Flush, FAllocate, Getdents64.
extension Connection {
    func pRead(_ request: PReadReq) throws -> Response {
        try withOpen(request.fd) { fd in
            guard fd.isReadable else { throw Errno.EBADF }
            // Response = 8-byte count + data; never allocate beyond the message size.
            guard UInt64(request.count) + 8 <= UInt64(maxMessageSize) else { throw Errno.ENOBUFS }
            var buffer = [UInt8](repeating: 0, count: Int(request.count))
            let n = try server.withRead(fd.control.node) {
                try buffer.withUnsafeMutableBytes { try provider.read(fd.handle, into: $0, at: request.offset) }
            }
            guard n >= 0, n <= buffer.count else { throw Errno.EIO }
            buffer.removeLast(buffer.count - n)
            return Response(.pRead, PReadResp(buf: buffer))
        }
    }

    func pWrite(_ request: PWriteReq) throws -> Response {
        try withOpen(request.fd) { fd in
            guard fd.isWritable else { throw Errno.EBADF }
            let n = try server.withWrite(fd.control.node) {
                try request.buf.withUnsafeBytes { try provider.write(fd.handle, from: $0, at: request.offset) }
            }
            guard n >= 0, n <= request.buf.count else { throw Errno.EIO }
            return Response(.pWrite, PWriteResp(count: UInt64(n)))
        }
    }

    /// FSync: syncs every listed open FD, reporting the first failure.
    func fSync(_ request: FsyncReq) throws -> Response {
        var firstError: Error?
        for id in request.fds {
            do {
                try withOpen(id) { fd in
                    try server.withRead(fd.control.node) { try provider.fsync(fd.handle) }
                }
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
        return Response(.fSync, FsyncResp())
    }

    func flush(_ request: FlushReq) throws -> Response {
        try withOpen(request.fd) { fd in
            try server.withRead(fd.control.node) { try provider.flush(fd.handle) }
            return Response(.flush, FlushResp())
        }
    }

    func fAllocate(_ request: FAllocateReq) throws -> Response {
        try withOpen(request.fd) { fd in
            guard fd.isWritable else { throw Errno.EBADF }
            try server.withWrite(fd.control.node) {
                if fd.control.node.isDeleted && !provider.allowsModifyingDeleted { throw Errno.EINVAL }
                try provider.allocate(fd.handle, mode: request.mode, offset: request.offset, length: request.length)
            }
            return Response(.fAllocate, FAllocateResp())
        }
    }

    /// Getdents64: a negative count means "seek to the start first". The byte
    /// budget is capped so the response always fits one message and the
    /// u16 entry count (host records are ≥ 24 bytes; a lisafs entry is at
    /// most 7 bytes longer than its host record).
    func getdents64(_ request: Getdents64Req) throws -> Response {
        try withOpen(request.dirFD) { fd in
            guard fd.control.isDirectory else { throw Errno.ENOTDIR }
            let restart = request.count < 0
            let requested = Int(request.count.magnitude)
            let fitsMessage = (Int(maxMessageSize) - 2) * 3 / 4
            let budget = min(requested, fitsMessage, Int(UInt16.max) * 24)
            let entries = try server.withRead(fd.control.node) {
                if fd.control.node.isDeleted { throw Errno.EINVAL }
                return try provider.getdents(fd.handle, byteBudget: budget, restart: restart)
            }
            guard entries.count <= Int(UInt16.max) else { throw Errno.EIO }
            let dirents = entries.map {
                Dirent64(ino: $0.ino, devMinor: $0.devMinor, devMajor: $0.devMajor, off: $0.offset,
                         type: $0.type, name: $0.name)
            }
            return Response(.getdents64, Getdents64Resp(dirents: dirents))
        }
    }
}
