#if canImport(Glibc)
import Glibc
#endif

/// A failure reported to the client as an errno in an Error response.
public struct Errno: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }

    /// The calling thread's current errno.
    public static var current: Errno { Errno(errno) }

    public var description: String { "errno \(code) (\(String(cString: strerror(code))))" }

    public static let EPERM = Errno(1), ENOENT = Errno(2), EIO = Errno(5), EBADF = Errno(9)
    public static let ENOMEM = Errno(12), EACCES = Errno(13), EEXIST = Errno(17), EXDEV = Errno(18)
    public static let ENOTDIR = Errno(20), EISDIR = Errno(21), EINVAL = Errno(22), EMFILE = Errno(24)
    public static let ENOSPC = Errno(28), EROFS = Errno(30), ERANGE = Errno(34)
    public static let ENAMETOOLONG = Errno(36), ENOSYS = Errno(38), ENOTEMPTY = Errno(39)
    public static let ELOOP = Errno(40), ENODATA = Errno(61), EOPNOTSUPP = Errno(95)
}
