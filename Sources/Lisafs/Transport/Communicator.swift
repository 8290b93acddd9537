/// One request received from the client, with any FDs that came with it.
public struct InboundRequest {
    public let mid: UInt16          // raw: unknown MIDs must be answerable with an error
    public let payload: [UInt8]
    public init(mid: UInt16, payload: [UInt8]) {
        self.mid = mid
        self.payload = payload
    }
}

/// The server side of one lisafs communicator: the Unix-socket one or a flipcall channel.
///
/// A communicator is used by exactly one serving thread, which alternates
/// `receive()` and `send(...)` strictly (every request gets exactly one response).
public protocol ServerCommunicator: AnyObject {
    /// Blocks for the next request. Returns nil when the peer has gone away
    /// (orderly shutdown); throws when the peer broke the framing rules, in which
    /// case the caller tears the communicator down.
    func receive() throws -> InboundRequest?

    /// Sends a response. Ownership of `fds` passes to the communicator, which
    /// closes them after sending (or on failure).
    func send(mid: UInt16, payload: [UInt8], fds: [Int32]) throws

    /// Wakes a blocked `receive()` so the serving thread can exit, and releases
    /// host resources. Idempotent; callable from any thread.
    ///
    /// The socket FD / shared window themselves are closed and unmapped when
    /// the communicator is freed (after the serving thread has let go of it),
    /// so a thread still inside `receive`/`send` never touches a reused FD or
    /// an unmapped page. After `shutdown()`, `receive()` returns nil.
    func shutdown()
}
