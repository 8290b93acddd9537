import ArgumentParser
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

/// Hidden driver for the crash test: commits random changes to one file forever, announcing each
/// commit on stdout so the parent that SIGKILLs it knows the two states the file may be in:
///   start <fingerprint>          committed content when the loop began
///   begin <n> <fingerprint>      commit n is about to start; fingerprint of its new content
///   end <n>                      commit n returned
struct DebugCommitLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "debug-commit-loop", abstract: "(test only)", shouldDisplay: false)

    @Option var store: String
    @Option(name: .customLong("key-file")) var keyFile: String
    @Option var name: String = "crash.bin"
    @Option var seed: UInt64 = 1
    @Option(name: .customLong("max-chunks")) var maxChunks: Int = 8
    @Option(name: .customLong("rekey-threshold")) var rekeyThreshold: UInt64 = 1 << 30
    @Option(name: .customLong("max-commits")) var maxCommits: Int = Int.max
    @Flag(name: .customLong("no-ordering-syncs")) var noOrderingSyncs = false

    func run() throws {
        var options = SealedStore.Options()
        options.rekeyThreshold = rekeyThreshold
        options.orderingSyncs = !noOrderingSyncs
        let s = try SealedStore.open(at: store, key: try KeyMaterial.readKeyFile(path: keyFile), options: options)
        let file: SealedFile
        let fd = openat(s.dataDirectory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 { file = try s.openFile(descriptor: fd); close(fd) } else { file = try s.createFile(in: s.dataDirectory, name: name) }
        var model = try file.read(offset: 0, count: Int(file.committedSize))
        say("start \(contentFingerprint(model))")
        var rng = seed &* 0x9E3779B97F4A7C15 | 1
        func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
        let c = file.chunkSize
        var n = 0
        while n < maxCommits {
            n += 1
            let r = next() % 100
            var newSize = model.count
            if r < 15 { newSize = Int(next() % UInt64(maxChunks * c + 1)) }
            else if r < 25 { newSize = Int(next() % UInt64(maxChunks + 1)) * c }
            else if r < 28 { newSize = 0 }
            else if r < 60 { newSize = min(maxChunks * c, max(0, model.count + Int(next() % UInt64(2 * c)) - c)) }
            if newSize < model.count { model.removeLast(model.count - newSize) } else { model += [UInt8](repeating: 0, count: newSize - model.count) }
            let chunks = (newSize + c - 1) / c
            var changes: [ChunkChange] = []
            if chunks > 0 {
                var picked = Set<Int>()
                for _ in 0..<Int(next() % 4) { picked.insert(Int(next() % UInt64(chunks))) }
                for i in picked.sorted() {
                    let len = min(c, newSize - i * c)
                    var p = [UInt8](repeating: 0, count: len)
                    for j in 0..<len where j % 8 == 0 { let v = next(); for k in 0..<min(8, len - j) { p[j + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) } }
                    model.replaceSubrange((i * c)..<(i * c + len), with: p)
                    changes.append(ChunkChange(index: UInt64(i), plaintext: p))
                }
            }
            say("begin \(n) \(contentFingerprint(model))")
            try file.commit(changes, newSize: UInt64(newSize), durable: next() % 4 == 0)
            say("end \(n)")
        }
        file.close()
        s.close()
    }

    private func say(_ line: String) { writeLineUnbuffered(line) }
}
