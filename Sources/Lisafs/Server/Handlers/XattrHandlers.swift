/// FGetXattr, FSetXattr, FListXattr, FRemoveXattr (all on control FDs).
extension Connection {
    /// Linux XATTR_NAME_MAX.
    static var maxXattrName: Int { 255 }

    /// The only namespace a client may touch: `user.`. The others carry host
    /// privileges or policy (security.capability grants file capabilities,
    /// security.selinux/smack label files, trusted.* steers overlayfs, system.*
    /// holds ACLs) and the gofer runs with more privilege than the sandbox, so
    /// the server refuses them for every provider, as the kernel refuses an
    /// unknown namespace (EOPNOTSUPP).
    static var clientXattrPrefix: [UInt8] { Array("user.".utf8) }

    static func isClientXattrName(_ name: [UInt8]) -> Bool {
        name.starts(with: clientXattrPrefix)
    }

    /// Names are C strings on the host: empty or NUL-containing names are
    /// invalid, over-long ones ERANGE (as the kernel answers); names outside
    /// the user namespace are not supported.
    func validateXattrName(_ name: [UInt8]) throws {
        guard !name.isEmpty, !name.contains(0) else { throw Errno.EINVAL }
        guard name.count <= Self.maxXattrName else { throw Errno.ERANGE }
        guard Self.isClientXattrName(name) else { throw Errno.EOPNOTSUPP }
    }

    func fGetXattr(_ request: FGetXattrReq) throws -> Response {
        try validateXattrName(request.name)
        return try withControl(request.fd) { fd in
            let value = try server.withRead(fd.node) {
                if fd.node.isDeleted { throw Errno.EINVAL }
                return try provider.getXattr(fd.handle, name: request.name, size: request.bufSize)
            }
            if request.bufSize != 0 && value.count > Int(request.bufSize) { throw Errno.ERANGE }
            guard value.count <= SizedString.maxLength else { throw Errno.E2BIG }
            return Response(.fGetXattr, FGetXattrResp(value: value))
        }
    }

    func fSetXattr(_ request: FSetXattrReq) throws -> Response {
        try validateXattrName(request.name)
        // XATTR_CREATE | XATTR_REPLACE
        guard request.flags & ~UInt32(3) == 0 else { throw Errno.EINVAL }
        return try withControl(request.fd) { fd in
            try server.withWrite(fd.node) {
                if fd.node.isDeleted { throw Errno.EINVAL }
                try provider.setXattr(fd.handle, name: request.name, value: request.value, flags: request.flags)
            }
            return Response(.fSetXattr, FSetXattrResp())
        }
    }

    func fListXattr(_ request: FListXattrReq) throws -> Response {
        try withControl(request.fd) { fd in
            let names = try server.withRead(fd.node) {
                if fd.node.isDeleted { throw Errno.EINVAL }
                // Other namespaces' names (SELinux labels, capabilities) stay hidden too.
                return try provider.listXattr(fd.handle, size: request.size).filter(Self.isClientXattrName)
            }
            guard names.count <= Int(UInt16.max), names.allSatisfy({ $0.count <= SizedString.maxLength }) else {
                throw Errno.E2BIG
            }
            return Response(.fListXattr, FListXattrResp(xattrs: names))
        }
    }

    func fRemoveXattr(_ request: FRemoveXattrReq) throws -> Response {
        try validateXattrName(request.name)
        return try withControl(request.fd) { fd in
            try server.withWrite(fd.node) {
                if fd.node.isDeleted { throw Errno.EINVAL }
                try provider.removeXattr(fd.handle, name: request.name)
            }
            return Response(.fRemoveXattr, FRemoveXattrResp())
        }
    }
}
