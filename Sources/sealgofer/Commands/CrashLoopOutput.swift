import Glibc

/// One line to stdout with write(2), unbuffered: the debug crash loops are
/// SIGKILLed at random instants, and the test harness must see every line
/// written before the kill (a stdio buffer would lose them).
func writeLineUnbuffered(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var done = 0
    while done < bytes.count {
        let w = bytes.withUnsafeBytes { write(1, $0.baseAddress! + done, bytes.count - done) }
        if w <= 0 { if errno == EINTR { continue }; return }
        done += w
    }
}
