import CLinux
import Glibc
import Lisafs

/// Extended attributes: on the node's FD, or through the /proc magic link when
/// the node only has an O_PATH FD. Symlinks have none here (Linux allows only
/// trusted/security ones on them).
extension HostProvider {
    /// Largest value Linux stores (XATTR_SIZE_MAX).
    static let maxXattrValue = 65536

    private func xattrTarget(_ node: Node) throws {
        if node.fileType == FileType.symlink { throw Errno.EOPNOTSUPP }
    }

    public func getXattr(_ node: Node, name: [UInt8], size: UInt32) throws -> [UInt8] {
        try xattrTarget(node)
        return try withCBytes(name) { cName in
            func get(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
                if node.isPathOnly {
                    return withCBytes(procPath(node.fd)) { clinux_getxattr_path($0, cName, buffer.baseAddress, buffer.count) }
                }
                return clinux_fgetxattr(node.fd, cName, buffer.baseAddress, buffer.count)
            }
            let capacity = size == 0 ? Self.maxXattrValue : min(Int(size), Self.maxXattrValue)
            var value = [UInt8](repeating: 0, count: capacity)
            let n = try value.withUnsafeMutableBytes { raw in try Host.check { get(raw) } }
            value.removeLast(value.count - n)
            return value
        }
    }

    public func setXattr(_ node: Node, name: [UInt8], value: [UInt8], flags: UInt32) throws {
        try xattrTarget(node)
        try withCBytes(name) { cName in
            try value.withUnsafeBytes { raw in
                let flags = Int32(bitPattern: flags)
                if node.isPathOnly {
                    try withCBytes(procPath(node.fd)) { path in
                        try Host.check { clinux_setxattr_path(path, cName, raw.baseAddress, raw.count, flags) }
                    }
                } else {
                    try Host.check { clinux_fsetxattr(node.fd, cName, raw.baseAddress, raw.count, flags) }
                }
            }
        }
    }

    public func listXattr(_ node: Node, size: UInt64) throws -> [[UInt8]] {
        if node.fileType == FileType.symlink { return [] }
        var buffer = [UInt8](repeating: 0, count: Self.maxXattrValue)
        let n = try buffer.withUnsafeMutableBytes { raw in
            try Host.check {
                let list = raw.baseAddress?.assumingMemoryBound(to: CChar.self)
                if node.isPathOnly {
                    return withCBytes(procPath(node.fd)) { clinux_listxattr_path($0, list, raw.count) }
                }
                return clinux_flistxattr(node.fd, list, raw.count)
            }
        }
        return buffer.prefix(n).split(separator: 0, omittingEmptySubsequences: true).map { Array($0) }
    }

    public func removeXattr(_ node: Node, name: [UInt8]) throws {
        try xattrTarget(node)
        try withCBytes(name) { cName in
            if node.isPathOnly {
                try withCBytes(procPath(node.fd)) { path in
                    try Host.check { clinux_removexattr_path(path, cName) }
                }
            } else {
                try Host.check { clinux_fremovexattr(node.fd, cName) }
            }
        }
    }
}
