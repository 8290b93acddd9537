import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal; at most 10 redraws/s.
final class ProgressBar {
    private let label: String
    private let enabled: Bool
    private var last = Date.distantPast
    private var drawn = false

    init(_ label: String, enabled: Bool = true) {
        self.label = label
        self.enabled = enabled && isatty(2) == 1
    }

    func update(done: UInt64, total: UInt64?) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.1 || (total != nil && done >= total!) else { return }
        last = now
        var line = "\r\(label) \(formatBytes(done))"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 30, filled = Int(fraction * Double(width))
            line = "\r\(label) [" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
                + "] \(Int(fraction * 100))% \(formatBytes(done))/\(formatBytes(total))"
        }
        fputs(line + "\u{1B}[K", stderr)
        drawn = true
    }

    func finish() {
        if drawn { fputs("\r\u{1B}[K", stderr) }
    }
}

func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f", v) + " " + units[u]
}
