import ArgumentParser
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

/// Hidden driver for the namespace crash test: creates, commits, hard-links, renames (over
/// existing files too) and unlinks files — some of them while open, committing to them after
/// their last name is gone — forever, announcing each operation so the parent that SIGKILLs it
/// knows the two namespace states the store may be in:
///   start <name>=<fingerprint> …        names and contents when the loop began
///   begin create <name>                 <name> appears, empty
///   begin commit <name> <fingerprint>   every name of that file gets the new content
///   begin link <from> <to>              <to> becomes another name of <from>'s file
///   begin rename <from> <to>            rename(2), possibly over an existing <to>
///   begin unlink <name>
///   end                                 the operation returned
///   note …                              anything else (invisible in the namespace)
struct DebugNamespaceLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "debug-namespace-loop", abstract: "(test only)", shouldDisplay: false)

    static let names = ["a0", "a1", "a2", "a3", "d/b0", "d/b1", "d/b2"]

    @Option var store: String
    @Option(name: .customLong("key-file")) var keyFile: String
    @Option var seed: UInt64 = 1
    @Option(name: .customLong("rekey-threshold")) var rekeyThreshold: UInt64 = 1 << 30
    @Option(name: .customLong("max-ops")) var maxOps: Int = Int.max
    @Flag(name: .customLong("no-ordering-syncs")) var noOrderingSyncs = false
    /// Creates from a creation pool of this size (its thread is killed with the loop).
    @Option(name: .customLong("creation-pool")) var creationPool: Int = 0

    func run() throws {
        var options = SealedStore.Options()
        options.rekeyThreshold = rekeyThreshold
        options.orderingSyncs = !noOrderingSyncs
        let s = try SealedStore.open(at: store, key: try KeyMaterial.readKeyFile(path: keyFile), options: options)
        if creationPool > 0 { s.startCreationPool(capacity: creationPool) }
        _ = mkdirat(s.dataDirectory, "d", 0o755)
        let sub = openat(s.dataDirectory, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard sub >= 0 else { throw ExitCode(3) }
        func place(_ name: String) -> (Int32, String) {
            name.hasPrefix("d/") ? (sub, String(name.dropFirst(2))) : (s.dataDirectory, name)
        }
        func exists(_ name: String) -> Bool {
            let (dir, leaf) = place(name)
            var st = stat()
            return fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0
        }
        func open(_ name: String) throws -> SealedFile {
            let (dir, leaf) = place(name)
            let fd = openat(dir, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw ExitCode(4) }
            defer { close(fd) }
            return try s.openFile(descriptor: fd)
        }

        var start: [String] = []
        for name in Self.names where exists(name) {
            let f = try open(name)
            start.append("\(name)=\(contentFingerprint(try f.readAll()))")
            f.close()
        }
        say((["start"] + start).joined(separator: " "))

        var rng = seed &* 0x9E3779B97F4A7C15 | 1
        func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
        func pick<T>(_ a: [T]) -> T { a[Int(next() % UInt64(a.count))] }
        func content(chunkSize c: Int) -> [UInt8] {
            let n = Int(next() % UInt64(3 * c + 100))
            var p = [UInt8](repeating: 0, count: n)
            var i = 0
            while i < n { let v = next(); for k in 0..<min(8, n - i) { p[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }; i += 8 }
            return p
        }
        func commit(_ f: SealedFile, _ p: [UInt8]) throws {
            let c = f.chunkSize
            let changes = stride(from: 0, to: p.count, by: c).map { ChunkChange(index: UInt64($0 / c), plaintext: Array(p[$0..<min($0 + c, p.count)])) }
            try f.commit(changes, newSize: UInt64(p.count), durable: next() % 4 == 0)
        }
        /// Victim FD (O_PATH) of an existing regular file `name`.
        func victim(_ name: String) -> Int32 {
            let (dir, leaf) = place(name)
            return openat(dir, leaf, 0o10000000 /* O_PATH: the provider holds victims this way */ | O_NOFOLLOW | O_CLOEXEC)
        }

        var held: [SealedFile] = []   // handles kept open across operations (some outlive their names)
        var n = 0
        while n < maxOps {
            n += 1
            let present = Self.names.filter(exists)
            let absent = Self.names.filter { !exists($0) }
            let r = next() % 100
            if r < 18, let name = absent.isEmpty ? nil : pick(absent) {
                say("begin create \(name)")
                let (dir, leaf) = place(name)
                let f = try s.createFile(in: dir, name: leaf, mode: 0o640) { fd in _ = fchmod(fd, 0o640) }
                say("end")
                if next() % 2 == 0 { held.append(f) } else { f.close() }
            } else if r < 50, !present.isEmpty {
                let name = pick(present)
                let f = try open(name)
                let p = content(chunkSize: f.chunkSize)
                say("begin commit \(name) \(contentFingerprint(p))")
                try commit(f, p)
                say("end")
                if next() % 3 == 0 { held.append(f) } else { f.close() }
            } else if r < 58, !present.isEmpty, !absent.isEmpty {
                let from = pick(present), to = pick(absent)
                let (fd, fl) = place(from), (td, tl) = place(to)
                say("begin link \(from) \(to)")
                guard linkat(fd, fl, td, tl, 0) == 0 else { throw ExitCode(5) }
                say("end")
            } else if r < 72, !present.isEmpty {
                let from = pick(present), to = pick(Self.names.filter { $0 != from })
                let (fd, fl) = place(from), (td, tl) = place(to)
                say("begin rename \(from) \(to)")
                if exists(to) {
                    let v = victim(to)
                    defer { close(v) }
                    try s.removingLink(of: v) { guard renameat(fd, fl, td, tl) == 0 else { throw ExitCode(6) } }
                } else {
                    guard renameat(fd, fl, td, tl) == 0 else { throw ExitCode(6) }
                }
                say("end")
            } else if r < 86, !present.isEmpty {
                let name = pick(present)
                let (dir, leaf) = place(name)
                if next() % 2 == 0 { held.append(try open(name)) }   // unlinked while open
                let v = victim(name)
                say("begin unlink \(name)")
                try s.removingLink(of: v) { guard unlinkat(dir, leaf, 0) == 0 else { throw ExitCode(7) } }
                close(v)
                say("end")
            } else if !held.isEmpty {
                let i = Int(next() % UInt64(held.count))
                var st = stat()
                if fstat(held[i].fileDescriptor, &st) == 0 && st.st_nlink == 0 && next() % 2 == 0 {
                    say("note commit to an unlinked open file")
                    try commit(held[i], content(chunkSize: held[i].chunkSize))
                } else {
                    say("note close")
                    held.remove(at: i).close()
                }
            }
        }
        for f in held { f.close() }
        s.close()
    }

    private func say(_ line: String) { writeLineUnbuffered(line) }
}
