import CLinux  // futex and shared-memory atomics (a dependency of Lisafs)
import Foundation
import Lisafs
#if canImport(Glibc)
import Glibc
#endif

/// The sandbox side of one lisafs channel obtained with the Channel RPC: a
/// flipcall packet window in the donated memfd, plus the fdchannel socket on
/// which response FDs arrive one per datagram. Used to run requests on
/// several server threads at once. One thread per channel.
///
/// Window layout (pkg/flipcall): u32 control state (0 client active, 1 server
/// active, 2 shut down) | u32 datagram length | 8 reserved | datagram.
/// Datagram: MID u16 | FD count u8 | pad u8 | payload.
final class FlipcallClient {
    private let memfd: Int32
    let fdSocket: Int32
    private let base: UnsafeMutableRawPointer
    private let length: UInt64
    private var state: UnsafeMutablePointer<UInt32> { base.assumingMemoryBound(to: UInt32.self) }
    private var dataLength: UnsafeMutablePointer<UInt32> { (base + 4).assumingMemoryBound(to: UInt32.self) }
    private var data: UnsafeMutableRawPointer { base + 16 }
    private(set) var isShutDown = false

    /// Takes ownership of the two FDs of a ChannelResp; performs the
    /// flipcall handshake. Nil if the window cannot be mapped or the
    /// handshake fails.
    init?(fds: [Int32], response: ChannelResp) {
        guard fds.count == 2, response.dataLength > 16,
              let mapped = clinux_map_shared(fds[0], response.dataLength, response.dataOffset) else {
            fds.forEach { _ = Glibc.close($0) }
            return nil
        }
        memfd = fds[0]
        fdSocket = fds[1]
        base = mapped
        length = response.dataLength
        guard let reply = exchange(Array("{}".utf8), timeout: 5), String(decoding: reply, as: UTF8.self).contains("{}") else {
            return nil
        }
    }

    deinit {
        _ = clinux_unmap(base, length)
        _ = Glibc.close(memfd)
        _ = Glibc.close(fdSocket)
    }

    /// Sends one request; returns the reply like the socket client does.
    /// FDs announced in the reply are read from the fdchannel and closed.
    func call(mid: UInt16, payload: [UInt8], timeout: TimeInterval = 10) -> Reply {
        guard !isShutDown else { return .closed }
        guard 16 + 4 + UInt64(payload.count) <= length else { return .ioError(EMSGSIZE) }
        var datagram = [UInt8(truncatingIfNeeded: mid), UInt8(truncatingIfNeeded: mid >> 8), 0, 0]
        datagram += payload
        guard let reply = exchange(datagram, timeout: timeout) else {
            return isShutDown ? .closed : .timedOut
        }
        guard reply.count >= 4 else { return .truncated(got: reply.count) }
        let replyMID = UInt16(reply[0]) | UInt16(reply[1]) << 8
        let fdCount = Int(reply[2])
        for _ in 0..<fdCount {
            var fds: [Int32] = []
            var byte: UInt8 = 0
            _ = RawClient.recvmsgWithFDs(fdSocket, &byte, 1, &fds, flags: Int32(MSG_DONTWAIT))
            fds.forEach { _ = Glibc.close($0) }
        }
        return .message(mid: replyMID, payload: Array(reply[4...]), fdCount: fdCount, fds: [])
    }

    func call<M: WireMessage>(_ mid: MID, _ message: M) -> Reply { call(mid: mid.rawValue, payload: message.encoded()) }

    // MARK: Breaking the rules on purpose

    /// The donated memfd (to try resizing it under the server's mapping).
    var memoryFD: Int32 { memfd }

    /// Hands control over with `claimedLength` in the length word whatever
    /// was written; returns the reply datagram, or nil (shutdown / no answer).
    func handOverRaw(_ datagram: [UInt8], claimedLength: UInt32, timeout: TimeInterval = 3) -> [UInt8]? {
        let capped = Array(datagram.prefix(Int(length) - 16))
        capped.withUnsafeBytes { UnsafeMutableRawBufferPointer(start: data, count: $0.count).copyMemory(from: $0) }
        return exchangeWritten(claimedLength: claimedLength, timeout: timeout)
    }

    /// Stores `value` into the control word and wakes the server.
    func scribbleState(_ value: UInt32) {
        clinux_atomic_store_u32(state, value)
        _ = clinux_futex_wake(state, Int32.max)
    }

    var stateWord: UInt32 { clinux_atomic_load_u32(state) }

    /// Publishes `datagram`, hands control to the server, waits for it to
    /// hand back; returns the server's datagram (nil on shutdown/timeout).
    private func exchange(_ datagram: [UInt8], timeout: TimeInterval) -> [UInt8]? {
        datagram.withUnsafeBytes { UnsafeMutableRawBufferPointer(start: data, count: $0.count).copyMemory(from: $0) }
        return exchangeWritten(claimedLength: UInt32(datagram.count), timeout: timeout)
    }

    private func exchangeWritten(claimedLength: UInt32, timeout: TimeInterval) -> [UInt8]? {
        clinux_atomic_store_u32(dataLength, claimedLength)
        guard clinux_atomic_cas_u32(state, 0, 1) == 1 else {
            isShutDown = true
            return nil
        }
        _ = clinux_futex_wake(state, 1)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let now = clinux_atomic_load_u32(state)
            if now == 0 { break }
            if now == 2 {
                isShutDown = true
                return nil
            }
            if Date() > deadline { return nil }
            _ = clinux_futex_wait(state, 1, 50_000_000)
        }
        let n = Int(min(clinux_atomic_load_u32(dataLength), UInt32(length - 16)))
        return Array(UnsafeRawBufferPointer(start: data, count: n))
    }
}
