/// Errnos the server and providers need beyond the core list in Errno.swift.
extension Errno {
    public static let ENXIO = Errno(6), E2BIG = Errno(7), EAGAIN = Errno(11), EFAULT = Errno(14)
    public static let EBUSY = Errno(16), EFBIG = Errno(27), ESPIPE = Errno(29), EMLINK = Errno(31)
    public static let ENOTSOCK = Errno(88), EPROTOTYPE = Errno(91), EPROTONOSUPPORT = Errno(93)
    public static let ECONNRESET = Errno(104), ENOBUFS = Errno(105), ECONNREFUSED = Errno(111)
    public static let EREMOTEIO = Errno(121)

    /// Maps any error to the errno the client will see: an `Errno` as is,
    /// a decoding failure as EIO (gVisor answers malformed payloads with EIO),
    /// anything else EIO.
    public static func from(_ error: Error) -> Errno {
        if let errno = error as? Errno { return errno }
        return .EIO
    }
}
