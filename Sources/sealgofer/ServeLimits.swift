import ArgumentParser
import Lisafs

/// `serve`'s per-connection limits, checked and turned into `Server.Options`.
/// Every limit answers the client with an errno (or, for an oversized frame,
/// ends that connection) and bounds what the client can make the gofer
/// allocate:
///
/// | limit | flag | beyond it |
/// | --- | --- | --- |
/// | message size | --max-message-size | frame longer: connection closed before allocating; PRead count: ENOBUFS; Getdents64, xattr lists: answer cut to fit |
/// | channels | --max-channels | ENOMEM |
/// | FDIDs held | --max-fds | EMFILE (and EMFILE/ENFILE when the host's RLIMIT_NOFILE runs out first) |
/// | scratch bytes (--store) | --scratch-limit | per serve process: unused scratches evicted, further opens served by RPCs |
enum ServeLimits {
    static let defaultChannels = 4
    static let defaultFDs = 65_536
    static let messageSizes: ClosedRange<UInt64> = 16 * 1024...16 * 1024 * 1024
    static let channels: ClosedRange<Int> = 1...64
    static let fds: ClosedRange<Int> = 16...(1 << 20)

    static func options<P: Provider>(readonly: Bool, maxMessageSize: String?, maxChannels: Int,
                                     maxFDs: Int) throws -> Server<P>.Options {
        var messageSize = MountResp.recommendedMaxMessageSize
        if let maxMessageSize {
            guard let bytes = ByteSize.parse(maxMessageSize), messageSizes.contains(bytes) else {
                throw ValidationError("--max-message-size must be between 16K and 16M")
            }
            messageSize = UInt32(bytes)
        }
        guard channels.contains(maxChannels) else { throw ValidationError("--max-channels must be between 1 and 64") }
        guard fds.contains(maxFDs) else { throw ValidationError("--max-fds must be between 16 and 1048576") }
        return .init(readonly: readonly, maxMessageSize: messageSize, maxChannelsPerConnection: maxChannels,
                     maxFDsPerConnection: maxFDs)
    }
}
