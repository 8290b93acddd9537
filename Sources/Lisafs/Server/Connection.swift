import Logging

/// One client mount: the main socket communicator, the channels it created,
/// and its FD table.
///
/// Lifecycle: `run()` serves the main communicator on the calling thread; each
/// Channel RPC starts one more serving thread. When the main communicator ends
/// (peer gone, framing broken, or a send failing) the connection shuts every
/// channel down, joins their threads — so no request is still running — and
/// then releases every FD, which closes every provider handle and host FD.
final class Connection<P: Provider>: @unchecked Sendable {
    let server: Server<P>
    let provider: P
    let fds: FDTable<P>
    let readonly: Bool
    let logger: Logger
    private let main: ServerCommunicator

    private let channelsLock = Mutex()
    private var channels: [(communicator: ServerCommunicator, thread: ServingThread)] = []
    private var isClosing = false

    init(server: Server<P>, main: ServerCommunicator) {
        self.server = server
        self.provider = server.provider
        self.fds = FDTable(capacity: server.options.maxFDsPerConnection)
        self.readonly = server.isReadonly
        self.logger = server.logger
        self.main = main
    }

    var maxMessageSize: UInt32 { server.options.maxMessageSize }

    /// Serves the main communicator until it ends, then tears down.
    func run() {
        serveLoop(main, label: "socket")
        teardown()
    }

    /// Receive → handle → send until the communicator ends.
    private func serveLoop(_ communicator: ServerCommunicator, label: String) {
        while true {
            let request: InboundRequest
            do {
                guard let next = try communicator.receive() else {
                    logger.debug("lisafs \(label): peer closed")
                    return
                }
                request = next
                server.options.requestObserver?(next.mid, next.payload)
            } catch {
                logger.info("lisafs \(label): receive failed, closing: \(error)")
                return
            }
            let response = handle(request)
            do {
                try communicator.send(mid: response.mid, payload: response.payload, fds: response.fds)
            } catch {
                logger.info("lisafs \(label): send failed, closing: \(error)")
                return
            }
        }
    }

    // MARK: Channels

    /// Creates a channel communicator and starts serving it. Returns what the
    /// client needs (ChannelResp and the FDs to donate).
    func openChannel() throws -> Response {
        try channelsLock.withLock {
            guard !isClosing else { throw Errno.ENOSYS }
            guard channels.count < server.options.maxChannelsPerConnection else { throw Errno.ENOMEM }
            let setup: ChannelCommunicator.Setup
            do {
                setup = try server.channelFactory(maxMessageSize)
            } catch {
                logger.warning("lisafs: channel creation failed: \(error)")
                throw Errno.ENOMEM
            }
            let communicator = setup.communicator
            let thread: ServingThread
            do {
                thread = try ServingThread.start { [self] in
                    serveLoop(communicator, label: "channel")
                }
            } catch {
                communicator.shutdown()
                closeDonations(setup.donatedFDs)
                throw error
            }
            channels.append((communicator, thread))
            return Response(.channel, ChannelResp(dataOffset: setup.dataOffset, dataLength: setup.dataLength),
                            fds: setup.donatedFDs)
        }
    }

    private func teardown() {
        main.shutdown()
        let running: [(communicator: ServerCommunicator, thread: ServingThread)] = channelsLock.withLock {
            isClosing = true
            return channels
        }
        for channel in running { channel.communicator.shutdown() }
        // A request still blocked on a bound socket would keep its thread, and
        // so this teardown, waiting forever; providers must never block there,
        // but make sure (the sockets stay open until released below).
        let sockets = fds.retainBoundSockets()
        for socket in sockets { provider.interrupt(boundSocket: socket.handle) }
        for channel in running { channel.thread.join() }
        for socket in sockets { socket.release() }
        channelsLock.withLock { channels.removeAll() }
        // Every serving thread has stopped: nothing can race the release.
        for entry in fds.removeAll() { entry.release() }
        logger.debug("lisafs: connection closed")
    }
}
