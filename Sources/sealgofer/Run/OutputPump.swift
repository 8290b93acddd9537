import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Copies one pipe to one of our descriptors on its own thread until EOF.
///
/// The container's stdout and stderr get a pipe each rather than our descriptors:
/// gVisor writes them through separate host file offsets, so when both are the same
/// file (`> log 2>&1`) its writes would overwrite each other. Through pipes, our own
/// writes go through our descriptors' shared offset and nothing is lost.
final class OutputPump {
    let writeEnd: Int32
    private let readEnd: Int32
    private let target: Int32
    private let done = DispatchSemaphore(value: 0)

    init(to target: Int32) throws {
        var ends: [Int32] = [-1, -1]
        // pipe2 is not visible from Swift's Glibc; no thread spawns children while
        // the pumps are being made, so setting close-on-exec afterwards is race-free.
        guard pipe(&ends) == 0 else {
            throw CLIError.usage("pipe: \(String(cString: strerror(errno)))")
        }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
        self.target = target
    }

    func start() {
        let thread = Thread { [self] in
            copyUntilEOF()
            done.signal()
        }
        thread.start()
    }

    /// Closes our copy of the write end: the pipe reaches EOF once the children's copies close.
    func closeWriteEnd() { close(writeEnd) }

    /// Waits for EOF, at most `seconds` (a sandbox process that outlives runsc may still hold the
    /// write end; we do not wait for it forever). Returns whether EOF was reached.
    @discardableResult
    func finish(within seconds: Double) -> Bool {
        done.wait(timeout: .now() + seconds) == .success
    }

    private func copyUntilEOF() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var targetOpen = true
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            // A closed stdout of ours must not block the container: keep draining, drop the data.
            if targetOpen { targetOpen = writeAll(buffer, count: n) }
        }
        close(readEnd)
    }

    private func writeAll(_ buffer: [UInt8], count: Int) -> Bool {
        var offset = 0
        while offset < count {
            let n = buffer.withUnsafeBytes { write(target, $0.baseAddress! + offset, count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
