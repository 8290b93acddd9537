import CLinux
import CSodium
import Foundation
import HostProvider
import Lisafs
import Logging
import SealedProvider
import SealedStore

// sealed-bench: the SealedProvider figures of BENCHMARKS.md, side by side in one run.
//
//   swift run -c release sealed-bench [--dir BASE] [--size-mib 256] [--rounds 3] [--seconds 1]
//                                     [--repeats 5] [--only commit|metadata|create|smallfiles|commitloop]
//                                     [--scratch DIR] [--par 2,1,3 (commitloop)]
//
// 1. Commit throughput of a freshly written file (written through the donated
//    FD, sealed by one Flush) against raw libsodium AEAD of the same bytes.
// 2. The cost of a no-change Flush against a bare FStat round trip.
// 3. The lisafs metadata operations of the interop benchmark, SealedProvider
//    against HostProvider, both in-process over a socketpair.

// As `sealgofer serve` does (its in-process server stands in for serve).
AllocatorTuning.applyForServing()
var arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
let base = option("--dir") ?? "/tmp"
let sizeMiB = Int(option("--size-mib") ?? "256") ?? 256
let seconds = Double(option("--seconds") ?? "1") ?? 1
let repeats = Int(option("--repeats") ?? "5") ?? 5
let only = option("--only")
let rounds = Int(option("--rounds") ?? "3") ?? 3
/// Where the commit benchmarks put scratch files (default: the provider's private directory under
/// /dev/shm); `--scratch private-tmpfs` mounts the private tmpfs `serve` uses (needs CAP_SYS_ADMIN).
let scratchDirectory: String? = {
    guard let s = option("--scratch") else { return nil }
    guard s == "private-tmpfs" else { return s }
    do { return "/proc/self/fd/\(try ScratchTmpfs.makePrivateTmpfs(scratchLimit: 64 << 30))" } catch {
        FileHandle.standardError.write(Data("sealed-bench: private tmpfs: \(error)\n".utf8))
        exit(1)
    }
}()
var logger = Logger(label: "sealed-bench")
logger.logLevel = .warning

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

func makeTemporaryDirectory(_ prefix: String) -> String {
    var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!
    return String(cString: made)
}

func newStore(_ root: String) throws -> (SealedStore, KeyMaterial) {
    let key = try KeyMaterial.createKeyFile(path: root + "/key")
    try SealedStore.initialize(at: root + "/store", key: key)
    return (try SealedStore.open(at: root + "/store", key: key), key)
}

// MARK: 1 + 2: commit throughput and no-change Flush

/// Raw libsodium AEAD over `count` chunks of `plain` into `slots` (seal) or back (open), on
/// `threads` threads: the floor a commit or a scratch fill is measured against.
struct RawAEAD {
    let suite: CipherSuite
    let chunk: Int
    let count: Int
    let plain: UnsafeMutableRawBufferPointer
    let slots: UnsafeMutableRawBufferPointer
    let out: UnsafeMutableRawBufferPointer
    var key = [UInt8](repeating: 0, count: 32)

    init(suite: CipherSuite, chunk: Int, plain: UnsafeMutableRawBufferPointer) {
        self.suite = suite; self.chunk = chunk; self.plain = plain
        count = plain.count / chunk
        slots = .allocate(byteCount: count * (chunk + 40), alignment: 4096)
        out = .allocate(byteCount: plain.count, alignment: 4096)
        // Touch every page once so that no pass pays for first faults.
        slots.initializeMemory(as: UInt8.self, repeating: 0)
        out.initializeMemory(as: UInt8.self, repeating: 0)
        randombytes_buf(&key, 32)
    }

    private var slotSize: Int { chunk + 40 }

    func seconds(seal: Bool, threads: Int) -> Double {
        let t0 = now()
        let k = key
        let body = { (w: Int) in
            var i = w
            var ad = [UInt8](repeating: 0, count: 40)
            while i < count {
                let p = (plain.baseAddress! + i * chunk).assumingMemoryBound(to: UInt8.self)
                let s = (slots.baseAddress! + i * slotSize).assumingMemoryBound(to: UInt8.self)
                let o = (out.baseAddress! + i * chunk).assumingMemoryBound(to: UInt8.self)
                ad[32] = UInt8(truncatingIfNeeded: i)
                var length: UInt64 = 0
                if seal {
                    randombytes_buf(s, 24)
                    if suite == .aes256gcm {
                        _ = crypto_aead_aes256gcm_encrypt(s + 24, &length, p, UInt64(chunk), ad, 40, nil, s, k)
                    } else {
                        _ = crypto_aead_xchacha20poly1305_ietf_encrypt(s + 24, &length, p, UInt64(chunk), ad, 40, nil, s, k)
                    }
                } else {
                    let rc: Int32
                    if suite == .aes256gcm {
                        rc = crypto_aead_aes256gcm_decrypt(o, &length, nil, s + 24, UInt64(chunk + 16), ad, 40, s, k)
                    } else {
                        rc = crypto_aead_xchacha20poly1305_ietf_decrypt(o, &length, nil, s + 24, UInt64(chunk + 16), ad, 40, s, k)
                    }
                    precondition(rc == 0, "raw open failed")
                }
                i += threads
            }
        }
        if threads == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: threads, execute: body) }
        return now() - t0
    }
}

func fmtRate(_ mib: Double, _ seconds: Double) -> String { String(format: "%6.0f MiB/s (%.3f s)", mib / seconds, seconds) }

/// CPU seconds (user + system) of this process, all threads: the server runs in-process.
func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

/// Wall and CPU seconds of `body`.
func timed(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    let w = now(), c = cpuSeconds()
    try body()
    return (now() - w, cpuSeconds() - c)
}

/// One provider (and its store, opened fresh: nothing cached) for the length of `body`.
func withSession<R>(_ storePath: String, _ key: KeyMaterial, _ options: SealedProvider.Options,
                    _ body: (BenchClient, FDID, SealedProvider) throws -> R) throws -> R {
    let store = try SealedStore.open(at: storePath, key: key)
    let provider = try SealedProvider(store: store, options: options, logger: logger)
    let client = try BenchClient(server: Server(provider: provider))
    defer { client.shutdown(); provider.shutdown() }
    return try body(client, try client.mount(), provider)
}

func benchCommit() throws {
    let root = makeTemporaryDirectory("sealed-bench-commit")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let (first, key) = try newStore(root)
    let storePath = root + "/store"
    let chunk = first.config.chunkSize
    let suite = first.config.suite
    first.close()
    var options = SealedProvider.Options()
    options.donateLimit = 1 << 40
    options.scratchLimit = 1 << 40
    options.commitInterval = 0
    options.scratchDirectory = scratchDirectory
    var direct = options
    direct.donateLimit = 1 << 20
    let size = sizeMiB << 20
    let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4))

    // Incompressible data, written through the donated FD as the sentry would.
    let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
    defer { plain.deallocate() }
    randombytes_buf(plain.baseAddress!, size)
    let raw = RawAEAD(suite: suite, chunk: chunk, plain: plain)
    // Rounds interleave every measurement (the machine is shared); best of each.
    var best: [String: Double] = [:]
    var bestCPU: [String: Double] = [:]
    func keep(_ name: String, _ t: (wall: Double, cpu: Double)) {
        best[name] = min(best[name] ?? .infinity, t.wall)
        bestCPU[name] = min(bestCPU[name] ?? .infinity, t.cpu)
    }
    for round in 0..<rounds {
        let name = "big\(round)"
        for i in 0..<(size >> 20) {
            plain.storeBytes(of: UInt8(truncatingIfNeeded: i &+ round), toByteOffset: i << 20, as: UInt8.self)
        }
        try withSession(storePath, key, options) { client, rootFD, _ in
            let created = try client.create(rootFD, name)
            guard let fd = created.donated else { throw BenchClient.Failure(description: "no donated FD") }
            defer { Glibc.close(fd) }
            for i in 0..<(size >> 20) { _ = pwrite(fd, plain.baseAddress! + (i << 20), 1 << 20, off_t(i) << 20) }
            keep("commit", try timed { try client.flush(created.open) })
            try client.close([created.open, created.control])
        }
        keep("seal1", timed { _ = raw.seconds(seal: true, threads: 1) })
        keep("sealN", timed { _ = raw.seconds(seal: true, threads: threads) })

        // Decrypt on open: a fresh provider opens the committed file, which fills its
        // scratch with the plaintext before the open returns.
        try withSession(storePath, key, options) { client, rootFD, _ in
            let node = try client.walk(rootFD, name)
            var opened: (FDID, Int32?)? = nil
            keep("open", try timed { opened = try client.open(node, flags: O_RDONLY) })
            let (open, donated) = opened!
            guard let donated else { throw BenchClient.Failure(description: "open: no donated FD") }
            defer { Glibc.close(donated) }
            var check = [UInt8](repeating: 0, count: 1 << 20)
            for offset in [0, size / 2, size - (1 << 20)] {
                _ = pread(donated, &check, 1 << 20, off_t(offset))
                if memcmp(check, plain.baseAddress! + offset, 1 << 20) != 0 { throw BenchClient.Failure(description: "open: wrong plaintext") }
            }
            try client.close([open, node])
        }
        // The same file served through PRead RPCs (above --donate-limit), 1 MiB per RPC.
        try withSession(storePath, key, direct) { client, rootFD, _ in
            let node = try client.walk(rootFD, name)
            let (open, donated) = try client.open(node, flags: O_RDONLY)
            if let donated { Glibc.close(donated); throw BenchClient.Failure(description: "direct: got a donated FD") }
            keep("rpcread", try timed {
                var offset = 0
                while offset < size {
                    let got = try client.pread(open, count: 1 << 20, at: UInt64(offset))
                    if got.count != 1 << 20 { throw BenchClient.Failure(description: "direct read: \(got.count)") }
                    if offset == size / 2 && memcmp(got, plain.baseAddress! + offset, 1 << 20) != 0 { throw BenchClient.Failure(description: "direct read: wrong plaintext") }
                    offset += 1 << 20
                }
            })
            try client.close([open, node])
        }
        keep("open1", timed { _ = raw.seconds(seal: false, threads: 1) })
        keep("openN", timed { _ = raw.seconds(seal: false, threads: threads) })
        // Freed pages are reused by the next round. On this VM (Firecracker) memory the guest
        // never touched before costs a host fault per page: 5-7x the copy into it (BENCHMARKS.md).
        if round + 1 < rounds { try withSession(storePath, key, options) { client, rootFD, _ in try client.unlink(rootFD, name) } }
    }
    let mib = Double(size) / 1_048_576
    func row(_ label: String, _ key: String) {
        print(label.padding(toLength: 50, withPad: " ", startingAt: 0) + fmtRate(mib, best[key]!)
              + String(format: "   CPU %.3f s", bestCPU[key]!))
    }
    print("store under \(base), scratch \(scratchDirectory ?? "private under /dev/shm")")
    print("\(sizeMiB) MiB, \(suite.name), \(chunk)-byte chunks, best of \(rounds) interleaved rounds, \(threads) threads; load \(loadAverage())")
    row("commit of a fresh file (one Flush)", "commit")
    row("raw AEAD seal, 1 thread", "seal1")
    row("raw AEAD seal, \(threads) threads", "sealN")
    print(String(format: "ratio commit / raw seal: %.2fx (1 thread), %.2fx (%d threads)  (goal >= 0.8x); CPU time raw 1 thread / commit %.2fx",
                 best["seal1"]! / best["commit"]!, best["sealN"]! / best["commit"]!, threads, bestCPU["seal1"]! / bestCPU["commit"]!))
    row("open of the committed file, fresh provider", "open")
    row("read by 1 MiB PRead RPCs, fresh provider", "rpcread")
    row("raw AEAD open, 1 thread", "open1")
    row("raw AEAD open, \(threads) threads", "openN")
    print(String(format: "ratio open / raw open: %.2fx (1 thread), %.2fx (%d threads); PRead RPCs: %.2fx, %.2fx; CPU raw / open %.2fx, raw / RPCs %.2fx",
                 best["open1"]! / best["open"]!, best["openN"]! / best["open"]!, threads,
                 best["open1"]! / best["rpcread"]!, best["openN"]! / best["rpcread"]!,
                 bestCPU["open1"]! / bestCPU["open"]!, bestCPU["open1"]! / bestCPU["rpcread"]!))

    try withSession(storePath, key, options) { client, rootFD, provider in
        let node = try client.walk(rootFD, "big\(rounds - 1)")
        let (open, donated) = try client.open(node, flags: O_RDWR)
        guard let fd = donated else { throw BenchClient.Failure(description: "no donated FD") }
        defer { Glibc.close(fd) }
        // One byte changed in the middle: the whole file is hashed, one chunk sealed.
        var flipped = ~plain.load(fromByteOffset: size / 2, as: UInt8.self)
        _ = pwrite(fd, &flipped, 1, off_t(size / 2))
        let t2 = now()
        try client.flush(open)
        print(String(format: "commit of 1 changed byte in %d MiB           %8.1f ms", sizeMiB, (now() - t2) * 1000))

        // No-change Flush against a bare FStat RPC.
        try client.flush(open)   // settles a record taken in the tick of a write
        let before = provider.statistics
        let n = 20_000
        let t3 = now()
        for _ in 0..<n { try client.flush(open) }
        let flushMicros = (now() - t3) / Double(n) * 1e6
        let t4 = now()
        for _ in 0..<n { _ = try client.fstat(open) }
        let fstatMicros = (now() - t4) / Double(n) * 1e6
        let after = provider.statistics
        print(String(format: "no-change Flush round trip                   %8.2f us  (FStat round trip %.2f us)", flushMicros, fstatMicros))
        print("no-change Flushes answered by one fstat: \(after.unchangedChecks - before.unchangedChecks) of \(n); "
              + "scans \(after.scans - before.scans), commits \(after.commits - before.commits)")
        try client.close([open, node])
    }
}

// MARK: 3: metadata

struct MetadataEnv {
    let name: String
    let client: BenchClient
    let root: FDID
    let data4k: FDID
    let bigDir: FDID
    var created = 0
}

let walkFiles = 1000
let bigEntries = 5000

let operations: [(String, (inout MetadataEnv, Int) throws -> Void)] = [
    ("fstat (1 RPC)", { env, _ in _ = try env.client.fstat(env.data4k) }),
    ("walk", { env, i in try env.client.close([try env.client.walk(env.root, String(format: "w%04d", i % walkFiles))]) }),
    ("walk+stat", { env, i in
        let fd = try env.client.walk(env.root, String(format: "w%04d", i % walkFiles))
        _ = try env.client.fstat(fd)
        try env.client.close([fd])
    }),
    ("create+close", { env, _ in
        env.created += 1
        let c = try env.client.create(env.root, String(format: "c%07d", env.created))
        if let d = c.donated { Glibc.close(d) }
        try env.client.close([c.open, c.control])
    }),
    ("open+read4k+close", { env, _ in
        let (fd, donated) = try env.client.open(env.data4k, flags: O_RDONLY)
        if let donated { Glibc.close(donated) }
        let got = try env.client.pread(fd, count: 4096).count
        try env.client.close([fd])
        if got != 4096 { throw BenchClient.Failure(description: "read \(got)") }
    }),
    ("getdents(5000)", { env, _ in
        let n = try env.client.listCount(env.bigDir)
        if n < bigEntries { throw BenchClient.Failure(description: "listed \(n)") }
    }),
]

func metadataEnv<P: Provider>(_ name: String, _ provider: P, populate: (BenchClient, FDID) throws -> Void) throws -> MetadataEnv {
    let client = try BenchClient(server: Server(provider: provider))
    let root = try client.mount()
    try populate(client, root)
    return MetadataEnv(name: name, client: client, root: root, data4k: try client.walk(root, "data4k"), bigDir: try client.walk(root, "big"))
}

func benchMetadata() throws {
    // Host tree, written directly.
    let hostRoot = makeTemporaryDirectory("sealed-bench-host")
    defer { try? FileManager.default.removeItem(atPath: hostRoot) }
    try FileManager.default.createDirectory(atPath: hostRoot + "/big", withIntermediateDirectories: true)
    for i in 0..<walkFiles { _ = FileManager.default.createFile(atPath: hostRoot + String(format: "/w%04d", i), contents: Data("x".utf8)) }
    for i in 0..<bigEntries { _ = FileManager.default.createFile(atPath: hostRoot + String(format: "/big/f%05d", i), contents: nil) }
    _ = FileManager.default.createFile(atPath: hostRoot + "/data4k", contents: Data(repeating: 9, count: 4096))
    let host = try HostProvider(rootPath: hostRoot, logger: logger)

    // The same tree in sealed stores, made through the provider: with the creation pool (the
    // default) and without it (BENCH_NO_POOL_ROW=1 drops that column).
    let withNoPoolRow = ProcessInfo.processInfo.environment["BENCH_NO_POOL_ROW"] == nil
    var cleanups: [() -> Void] = []
    defer { for c in cleanups { c() } }
    func sealedProvider(pool: Bool) throws -> SealedProvider {
        let sealedRoot = makeTemporaryDirectory("sealed-bench-store")
        let (store, _) = try newStore(sealedRoot)
        var options = SealedProvider.Options()
        options.commitInterval = 0
        if !pool { options.creationPool = 0 }
        let provider = try SealedProvider(store: store, options: options, logger: logger)
        cleanups.append { provider.shutdown(); try? FileManager.default.removeItem(atPath: sealedRoot) }
        return provider
    }
    func populateSealed(_ client: BenchClient, _ root: FDID) throws {
        for i in 0..<walkFiles {
            let c = try client.create(root, String(format: "w%04d", i))
            if let d = c.donated { _ = pwrite(d, "x", 1, 0); Glibc.close(d) }
            try client.close([c.open, c.control])
        }
        let big = try client.mkdir(root, "big")
        for i in 0..<bigEntries {
            let c = try client.create(big, String(format: "f%05d", i))
            if let d = c.donated { Glibc.close(d) }
            try client.close([c.open, c.control])
        }
        let c = try client.create(root, "data4k")
        if let d = c.donated { _ = [UInt8](repeating: 9, count: 4096).withUnsafeBytes { pwrite(d, $0.baseAddress!, 4096, 0) }; Glibc.close(d) }
        try client.close([c.open, c.control])
    }

    var envs = [
        try metadataEnv("host", host) { _, _ in },
        try metadataEnv("sealed", try sealedProvider(pool: true), populate: populateSealed),
    ]
    if withNoPoolRow { envs.append(try metadataEnv("sealed, no pool", try sealedProvider(pool: false), populate: populateSealed)) }
    defer { for e in envs { e.client.shutdown() } }
    print("metadata ops, single client, median of \(repeats) interleaved runs of \(seconds) s; stores under \(base); load \(loadAverage())")
    print("CPU = the whole process (client, server and background threads) per op, median run")
    print("op                     host ops/s   sealed ops/s   sealed time/op vs host"
          + (withNoPoolRow ? "   no-pool ops/s  vs host" : "") + "   CPU us/op host / sealed" + (withNoPoolRow ? " / no pool" : ""))
    func processCPU() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
    for (name, op) in operations {
        var samples = [[Double]](repeating: [], count: envs.count)
        var cpu = [[Double]](repeating: [], count: envs.count)
        var i = 0
        for _ in 0..<repeats {
            for e in 0..<envs.count {
                let warm = now() + seconds / 10
                while now() < warm { try op(&envs[e], i); i += 1 }
                let start = now(), startCPU = processCPU()
                var n = 0
                while true {
                    try op(&envs[e], i); i += 1; n += 1
                    if n % 16 == 0 && now() - start > seconds { break }
                }
                samples[e].append(Double(n) / (now() - start))
                cpu[e].append((processCPU() - startCPU) / Double(n) * 1e6)
            }
        }
        let medians = samples.map { $0.sorted()[$0.count / 2] }
        let cpuMedians = cpu.map { $0.sorted()[$0.count / 2] }
        var line = name.padding(toLength: 20, withPad: " ", startingAt: 0)
            + String(format: " %12.0f %14.0f %14.2fx", medians[0], medians[1], medians[0] / medians[1])
        if withNoPoolRow { line += String(format: " %15.0f %8.2fx", medians[2], medians[0] / medians[2]) }
        line += "   " + cpuMedians.map { String(format: "%.1f", $0) }.joined(separator: " / ")
        print(line)
    }
}

/// Profiling aid: fresh-file commits only (`--only commitloop --rounds N [--par 2,1,3]`), each
/// timed; rounds cycle through the store parallelisms given (a fresh session each), so that
/// settings are compared under the same load. Round 0 is a warm-up (first touch of memory).
func benchCommitLoop() throws {
    let root = makeTemporaryDirectory("sealed-bench-commitloop")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let (first, key) = try newStore(root)
    first.close()
    var options = SealedProvider.Options()
    options.donateLimit = 1 << 40
    options.scratchLimit = 1 << 40
    options.commitInterval = 0
    options.scratchDirectory = scratchDirectory
    let pars = (option("--par") ?? "\(SealedStore.Options().parallelism)").split(separator: ",").compactMap { Int($0) }
    let size = sizeMiB << 20
    let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
    defer { plain.deallocate() }
    randombytes_buf(plain.baseAddress!, size)
    var walls: [Int: [Double]] = [:], cpus: [Int: [Double]] = [:]
    for round in 0...rounds {
        let par = pars[round % pars.count]
        var storeOptions = SealedStore.Options()
        storeOptions.parallelism = par
        let store = try SealedStore.open(at: root + "/store", key: key, options: storeOptions)
        let provider = try SealedProvider(store: store, options: options, logger: logger)
        let client = try BenchClient(server: Server(provider: provider))
        defer { client.shutdown(); provider.shutdown() }
        let rootFD = try client.mount()
        let created = try client.create(rootFD, "big")
        guard let fd = created.donated else { throw BenchClient.Failure(description: "no donated FD") }
        for i in 0..<(size >> 20) { _ = pwrite(fd, plain.baseAddress! + (i << 20), 1 << 20, off_t(i) << 20) }
        let t = try timed { try client.flush(created.open) }
        Glibc.close(fd)
        try client.close([created.open, created.control])
        try client.unlink(rootFD, "big")   // its pages are reused by the next round
        print(String(format: "commit %d, parallelism %d: %6.0f MiB/s wall (%.3f s), CPU %.3f s%@", round, par,
                     Double(size) / 1_048_576 / t.wall, t.wall, t.cpu, round == 0 ? " (warm-up)" : ""))
        if round > 0 { walls[par, default: []].append(t.wall); cpus[par, default: []].append(t.cpu) }
    }
    for par in pars where walls[par] != nil {
        let w = walls[par]!.sorted(), c = cpus[par]!.sorted()
        print(String(format: "parallelism %d: wall median %.3f s (best %.3f), CPU median %.3f s (best %.3f), %d rounds",
                     par, w[w.count / 2], w[0], c[c.count / 2], c[0], w.count))
    }
}

/// CPU seconds so far of this process's background threads that make and release files ahead
/// of need (the creation pool, the scratch stock, deferred release), from /proc (10 ms ticks).
func backgroundCPU() -> Double {
    let names = ["sealgofer-creat", "sealgofer-scrat", "sealgofer-relea"]   // comm is cut at 15 bytes
    var ticks = 0
    for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
        guard let comm = try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8),
              names.contains(where: { comm.hasPrefix($0) }),
              let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After "pid (comm)": state is field 0, utime 11, stime 12.
        if fields.count > 12, let u = Int(fields[11]), let s = Int(fields[12]) { ticks += u + s }
    }
    return Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// create+close only (`--only create`): HostProvider, SealedProvider with the creation pool and
/// without it, `--rounds` interleaved rounds of 5000 creates each in a fresh directory, each
/// provider fresh per round (its pool filled before timing starts, as in a sandbox that has
/// been up a moment). Prints every round and the median; CPU is the whole process's (client,
/// server and background threads), per op. `BENCH_POOL=0` or `=1`: only that sealed variant.
func benchCreates() throws {
    let choice = ProcessInfo.processInfo.environment["BENCH_POOL"]
    let n = 5000
    let root = makeTemporaryDirectory("sealed-bench-create")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let (first, key) = try newStore(root)
    first.close()
    try FileManager.default.createDirectory(atPath: root + "/host", withIntermediateDirectories: true)
    var variants: [(String, Int?)] = [("host", nil)]
    for pool in [true, false] where choice == nil || choice == (pool ? "1" : "0") {
        variants.append((pool ? "sealed, pool" : "sealed, no pool", pool ? 16 : 0))
    }
    var results = [[(wall: Double, cpu: Double)]](repeating: [], count: variants.count)
    var backgroundPerOp = [[Double]](repeating: [], count: variants.count)
    print("create+close, \(n) per round, \(rounds) interleaved rounds; under \(base); load \(loadAverage())")
    for round in 0..<rounds {
        var line = "round \(round):"
        for (v, variant) in variants.enumerated() {
            let client: BenchClient
            var done: () -> Void
            var pooled: () -> Int = { 0 }
            if let pool = variant.1 {
                let store = try SealedStore.open(at: root + "/store", key: key)
                var options = SealedProvider.Options()
                options.commitInterval = 0
                options.creationPool = pool
                let provider = try SealedProvider(store: store, options: options, logger: logger)
                client = try BenchClient(server: Server(provider: provider))
                done = { client.shutdown(); provider.shutdown() }
                if pool > 0 { store.waitForFullCreationPool(seconds: 2) }
                let before = store.creationPoolStatistics.made
                pooled = { store.creationPoolStatistics.made - before + pool }
            } else {
                let provider = try HostProvider(rootPath: root + "/host", logger: logger)
                client = try BenchClient(server: Server(provider: provider))
                done = { client.shutdown() }
            }
            let rootFD = try client.mount()
            let dir = try client.mkdir(rootFD, "r\(round)-\(v)")
            let background0 = backgroundCPU()
            let t = try measured {
                for i in 0..<n {
                    let c = try client.create(dir, "c\(i)")
                    if let d = c.donated { Glibc.close(d) }
                    try client.close([c.open, c.control])
                }
            }
            let fromPool = min(n, pooled())   // upper bound: made during the round, plus the full pool
            let background = backgroundCPU() - background0
            done()
            results[v].append(t)
            line += String(format: "  %@ %.1f us wall / %.1f us CPU", variant.0, t.wall / Double(n) * 1e6, t.cpu / Double(n) * 1e6)
            if (variant.1 ?? 0) > 0 {
                line += String(format: " (%.1f of it background; ≤ %d from the pool)", background / Double(n) * 1e6, fromPool)
                backgroundPerOp[v].append(background / Double(n) * 1e6)
            }
        }
        print(line)
    }
    func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
    let host = (median(results[0].map(\.wall)), median(results[0].map(\.cpu)))
    for (v, variant) in variants.enumerated() {
        let wall = median(results[v].map(\.wall)), cpu = median(results[v].map(\.cpu))
        var line = String(format: "median %@: %.1f us/op wall (%.2fx host), %.1f us/op CPU (%.2fx host)",
                          variant.0.padding(toLength: 16, withPad: " ", startingAt: 0), wall / Double(n) * 1e6, wall / host.0,
                          cpu / Double(n) * 1e6, cpu / host.1)
        if !backgroundPerOp[v].isEmpty {
            let b = median(backgroundPerOp[v])
            line += String(format: ", of which background threads %.1f us (request path and client %.2fx host)",
                           b, (cpu / Double(n) * 1e6 - b) / (host.1 / Double(n) * 1e6))
        }
        print(line)
    }
    print("load \(loadAverage())")
}

do {
    if only == "create" { try benchCreates() }
    if only == "commitloop" { try benchCommitLoop() }
    if only == "smallfiles" { try benchSmallFiles() }
    if only == nil || only == "commit" { try benchCommit() }
    if only == nil || only == "metadata" { try benchMetadata() }
} catch {
    FileHandle.standardError.write(Data("sealed-bench: \(error)\n".utf8))
    exit(1)
}
