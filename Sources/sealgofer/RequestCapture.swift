import Foundation
import Lisafs

/// SEALGOFER_CAPTURE_DIR=DIR makes `serve` append every request it receives
/// (socket and channels) to DIR/capture-<pid>.bin, as records of
/// [u16 MID][u32 payload length][payload], little-endian. Off unless the
/// variable is set; for building fuzz corpora from real traffic
/// (Fuzz/make-corpus). The file is opened before seccomp is installed.
final class RequestCapture: @unchecked Sendable {
    private let fd: Int32
    private var mutex = pthread_mutex_t()

    /// nil unless SEALGOFER_CAPTURE_DIR is set and the file can be created.
    static func fromEnvironment() -> RequestCapture? {
        guard let dir = ProcessInfo.processInfo.environment["SEALGOFER_CAPTURE_DIR"], !dir.isEmpty else { return nil }
        let fd = open("\(dir)/capture-\(getpid()).bin", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        return fd >= 0 ? RequestCapture(fd: fd) : nil
    }

    private init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(&mutex, nil)
    }

    func record(mid: UInt16, payload: [UInt8]) {
        var bytes: [UInt8] = [UInt8(mid & 0xff), UInt8(mid >> 8)]
        let length = UInt32(payload.count)
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
        bytes += payload
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n <= 0 { return }
                done += n
            }
        }
    }
}
