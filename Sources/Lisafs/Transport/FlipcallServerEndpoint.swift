import Atomics
import CLinux
import Glibc

/// The server side of a gVisor flipcall connection (pkg/flipcall, futex
/// variant) over a `PacketWindow`.
///
/// The control word says who may touch the window: 0 = client active,
/// 1 = server active, 2 = shut down. Whoever is active writes the datagram,
/// then compare-and-swaps the word to the other side and FUTEX_WAKEs it. The
/// futex is shared (not FUTEX_PRIVATE) because the peer is another process.
///
/// The very first exchange is flipcall's own handshake: the client sends the
/// JSON `{}` and the server answers `{}` before any real message.
///
/// The serving thread calls `receiveFirst`, then alternately `send` and
/// `receiveNext`. `shutdown` may be called from any thread and wakes a
/// blocked serving thread; the local `waitState` mirrors flipcall's
/// `ctrl.state` so that exactly one of them marks the connection shut down.
final class FlipcallServerEndpoint {
    private enum State {
        static let clientActive: UInt32 = 0
        static let serverActive: UInt32 = 1
        static let shutdown: UInt32 = 2
    }
    private enum WaitBits {
        static let blocked: Int32 = 1
        static let shutdown: Int32 = 2
    }
    static let handshakeReply: [UInt8] = Array("{}\n".utf8)

    private let window: PacketWindow
    private let shutdownRequested = ManagedAtomic<Bool>(false)
    private let waitState = ManagedAtomic<Int32>(0)
    /// How long one futex wait lasts before `peerIsAlive` is consulted. This
    /// is what lets the serving thread notice a client that died while it
    /// was the active side (nothing else would ever wake us).
    private let peerCheckIntervalNanos: Int64
    private let peerIsAlive: () -> Bool

    init(window: PacketWindow, peerCheckIntervalNanos: Int64, peerIsAlive: @escaping () -> Bool) {
        self.window = window
        self.peerCheckIntervalNanos = peerCheckIntervalNanos
        self.peerIsAlive = peerIsAlive
    }

    var dataCapacity: UInt32 { window.dataCapacity }
    var data: UnsafeMutableRawPointer { window.data }

    /// Completes the client's connection handshake and waits for its first
    /// request; returns that request's datagram length.
    func receiveFirst() throws -> UInt32 {
        try enterWait()
        defer { exitWait() }
        try waitUntilActive()
        let requestLength = try loadDataLength()
        guard requestLength <= 64, Self.isEmptyJSONObject(UnsafeRawBufferPointer(start: window.data, count: Int(requestLength))) else {
            throw TransportError.protocolViolation("flipcall handshake is not an empty JSON object")
        }
        UnsafeMutableRawBufferPointer(start: window.data, count: Self.handshakeReply.count)
            .copyBytes(from: Self.handshakeReply)
        clinux_atomic_store_u32(window.dataLength, UInt32(Self.handshakeReply.count))
        try setPeerActive()
        try wakePeer()
        try waitUntilActive()
        return try loadDataLength()
    }

    /// Waits for the client's next request; returns its datagram length.
    func receiveNext() throws -> UInt32 {
        try enterWait()
        defer { exitWait() }
        try waitUntilActive()
        return try loadDataLength()
    }

    /// Publishes a response of `dataLength` bytes (already in `data`) and
    /// hands the window to the client.
    func send(dataLength: UInt32) throws {
        guard dataLength <= window.dataCapacity else {
            throw TransportError.messageTooLarge(length: UInt64(dataLength), max: window.dataCapacity)
        }
        clinux_atomic_store_u32(window.dataLength, dataLength)
        try setPeerActive()
        try wakePeer()
    }

    /// Idempotent; safe from any thread.
    func shutdown() {
        if shutdownRequested.exchange(true, ordering: .sequentiallyConsistent) { return }
        let now = waitState.wrappingIncrementThenLoad(by: WaitBits.shutdown, ordering: .sequentiallyConsistent)
        if now & WaitBits.blocked != 0 {
            // The serving thread is waiting (or about to): keep waking until it
            // has left, because a wake can land between its flag check and its
            // FUTEX_WAIT. INT32_MAX so a peer waiting on the same word cannot
            // swallow the wake-up.
            repeat {
                _ = clinux_futex_wake(window.connectionState, Int32.max)
                sched_yield()
            } while waitState.load(ordering: .sequentiallyConsistent) & WaitBits.blocked != 0
        } else {
            markConnectionShutdown()
        }
    }

    // MARK: - Connection state

    private func enterWait() throws {
        let now = waitState.wrappingIncrementThenLoad(by: WaitBits.blocked, ordering: .sequentiallyConsistent)
        switch now {
        case WaitBits.blocked:
            return
        case WaitBits.blocked | WaitBits.shutdown:
            waitState.wrappingDecrement(by: WaitBits.blocked, ordering: .sequentiallyConsistent)
            throw TransportError.shutDown
        default:
            // Only one serving thread may use an endpoint.
            waitState.wrappingDecrement(by: WaitBits.blocked, ordering: .sequentiallyConsistent)
            throw TransportError.protocolViolation("flipcall endpoint used from two threads")
        }
    }

    private func exitWait() {
        let now = waitState.wrappingDecrementThenLoad(by: WaitBits.blocked, ordering: .sequentiallyConsistent)
        if now == WaitBits.shutdown {
            // shutdown() ran while we were blocked and left marking the
            // connection to us.
            markConnectionShutdown()
        }
    }

    private func markConnectionShutdown() {
        let previous = clinux_atomic_swap_u32(window.connectionState, State.shutdown)
        if previous == State.serverActive {
            // The client is waiting for us: wake it so it sees the shutdown.
            // (If it is active it notices when it tries to hand back control.)
            _ = clinux_futex_wake(window.connectionState, 1)
        }
    }

    private func setPeerActive() throws {
        if clinux_atomic_cas_u32(window.connectionState, State.serverActive, State.clientActive) != 0 {
            return
        }
        let state = clinux_atomic_load_u32(window.connectionState)
        if state == State.shutdown { throw TransportError.shutDown }
        throw TransportError.protocolViolation("flipcall state \(state) when handing control to the client")
    }

    private func wakePeer() throws {
        if clinux_futex_wake(window.connectionState, 1) < 0 {
            throw TransportError.systemCall("futex(FUTEX_WAKE)", errno: errno)
        }
    }

    private func waitUntilActive() throws {
        while true {
            let state = clinux_atomic_load_u32(window.connectionState)
            switch state {
            case State.serverActive:
                return
            case State.clientActive:
                if shutdownRequested.load(ordering: .sequentiallyConsistent) {
                    throw TransportError.shutDown
                }
                if clinux_futex_wait(window.connectionState, State.clientActive, peerCheckIntervalNanos) == 0 {
                    continue
                }
                let err = errno
                switch err {
                case EAGAIN, EINTR:
                    continue
                case ETIMEDOUT:
                    // The client died holding control: treat as a shutdown by it.
                    if !peerIsAlive() { throw TransportError.shutDown }
                default:
                    throw TransportError.systemCall("futex(FUTEX_WAIT)", errno: err)
                }
            case State.shutdown:
                throw TransportError.shutDown
            default:
                throw TransportError.protocolViolation("flipcall state \(state) while waiting")
            }
        }
    }

    private func loadDataLength() throws -> UInt32 {
        let length = clinux_atomic_load_u32(window.dataLength)
        guard length <= window.dataCapacity else {
            throw TransportError.protocolViolation("datagram length \(length) exceeds capacity \(window.dataCapacity)")
        }
        return length
    }

    /// flipcall's handshake is Go's JSON encoding of `struct{}`: `{}` plus
    /// optional whitespace. Anything else is not a flipcall client.
    static func isEmptyJSONObject(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let meaningful = bytes.filter { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }
        return meaningful == [UInt8(ascii: "{"), UInt8(ascii: "}")]
    }
}
