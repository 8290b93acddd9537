import Logging

/// A lisafs server for one tree, served by a `Provider`.
///
/// One `Server` may serve many connections (mounts) at once; they share the
/// node tree and its locks, so renames and unlinks on one connection are
/// correctly serialised against walks on every other.
public final class Server<P: Provider>: @unchecked Sendable {
    public struct Options: Sendable {
        /// Refuse every mutation with EROFS (also implied by `Provider.isReadonly`).
        public var readonly: Bool
        /// Largest payload accepted or sent on any communicator (MountResp.maxMessageSize).
        public var maxMessageSize: UInt32
        /// Channels one connection may create; further Channel RPCs get ENOMEM
        /// (gVisor's client tolerates that once it has at least one).
        public var maxChannelsPerConnection: Int
        /// FDs one connection may hold at once (EMFILE beyond).
        public var maxFDsPerConnection: Int
        /// Sees every request as received, on every communicator, before it is
        /// handled (off by default; `serve` uses it to capture traffic for the
        /// fuzz corpus). Called concurrently from the serving threads.
        public var requestObserver: (@Sendable (_ mid: UInt16, _ payload: [UInt8]) -> Void)? = nil

        public init(readonly: Bool = false,
                    maxMessageSize: UInt32 = MountResp.recommendedMaxMessageSize,
                    maxChannelsPerConnection: Int = 4,
                    maxFDsPerConnection: Int = 1 << 20) {
            self.readonly = readonly
            self.maxMessageSize = maxMessageSize
            self.maxChannelsPerConnection = maxChannelsPerConnection
            self.maxFDsPerConnection = maxFDsPerConnection
        }
    }

    /// Builds the communicator for a Channel RPC. Defaults to flipcall channels.
    public typealias ChannelFactory = (_ maxMessageSize: UInt32) throws -> ChannelCommunicator.Setup

    public let provider: P
    public let options: Options
    public let logger: Logger
    let channelFactory: ChannelFactory

    /// Server-wide: shared by every operation, exclusive for renames.
    let renameLock = RWLock()
    /// The tree's root; the server holds its reference forever.
    let root = PathNode()

    /// MIDs answered: the provider's plus those the server implements itself.
    let supportedMIDs: Set<MID>

    public init(provider: P, options: Options = Options(), logger: Logger = Logger(label: "sealgofer.lisafs"),
                channelFactory: @escaping ChannelFactory = { try ChannelCommunicator.create(maxMessageSize: $0) }) {
        self.provider = provider
        self.options = options
        self.logger = logger
        self.channelFactory = channelFactory
        var mids = provider.supportedMIDs
        mids.formUnion([.mount, .channel, .close])
        mids.remove(.error)
        supportedMIDs = mids
    }

    /// Whether connections refuse mutations.
    var isReadonly: Bool { options.readonly || provider.isReadonly }

    /// Serves one connection on a connected AF_UNIX stream socket (taking
    /// ownership of `connectionFD`) and returns when the client has gone and
    /// everything the connection held is released.
    public func serve(connectionFD: Int32) {
        serve(communicator: SocketCommunicator(fd: connectionFD, maxMessageSize: options.maxMessageSize))
    }

    /// Serves one connection on an already built main communicator; returns
    /// after teardown.
    public func serve(communicator: ServerCommunicator) {
        let connection = Connection(server: self, main: communicator)
        connection.run()
    }

    /// Starts serving a connection on its own thread and returns at once.
    /// `onFinish` runs on that thread after teardown.
    public func start(connectionFD: Int32, onFinish: @escaping @Sendable () -> Void = {}) throws {
        let communicator = SocketCommunicator(fd: connectionFD, maxMessageSize: options.maxMessageSize)
        _ = try ServingThread.start { [self] in
            serve(communicator: communicator)
            onFinish()
        }
    }

    // MARK: Concurrency guarantees (lisafs README "Concurrency")

    /// Read guarantee on `node`: no write on it and no rename anywhere.
    func withRead<T>(_ node: PathNode, _ body: () throws -> T) rethrows -> T {
        try renameLock.withReadLock { try node.opLock.withReadLock(body) }
    }

    /// Write guarantee on `node`: exclusive of reads and writes on it and of renames.
    func withWrite<T>(_ node: PathNode, _ body: () throws -> T) rethrows -> T {
        try renameLock.withReadLock { try node.opLock.withWriteLock(body) }
    }

    /// Global guarantee: nothing else runs on the tree.
    func withGlobal<T>(_ body: () throws -> T) rethrows -> T {
        try renameLock.withWriteLock(body)
    }
}
