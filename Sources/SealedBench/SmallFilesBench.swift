import Foundation
import HostProvider
import Lisafs
import SealedProvider
import SealedStore

// `--only smallfiles`: the per-file rows of the sandbox benchmark without the sandbox, so the
// gofer's own share can be profiled. SealedProvider against HostProvider, interleaved, each
// round on a fresh provider (and, for the store, a freshly opened store), like a new sandbox:
//   create — 2000 files of 1 KiB: OpenCreateAt, write through the donated FD, Close;
//   create empty — 2000 files: OpenCreateAt, Close (the create alone, no commit);
//   walk   — Walk + Close of the 2000 files by a fresh provider (nothing cached: a cold stat).
// Wall time and the process's CPU time (client and server threads together: on a shared
// machine CPU time is the steadier figure).

let smallFileCount = 2000

/// One side of the comparison: makes a fresh provider for each round.
struct SmallFilesSide {
    let name: String
    let connect: () throws -> (BenchClient, () -> Void)
}

/// Wall and process CPU seconds of `body`.
func measured(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    func cpuNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
    let (w0, c0) = (now(), cpuNow())
    try body()
    return (now() - w0, cpuNow() - c0)
}

func timeCreates(_ client: BenchClient, directory: String, size: Int = 1024) throws -> (wall: Double, cpu: Double) {
    let root = try client.mount()
    let dir = try client.mkdir(root, directory)
    let payload = [UInt8](repeating: 0x73, count: size)
    let elapsed = try measured {
      for i in 0..<smallFileCount {
        let c = try client.create(dir, String(format: "f%04d", i))
        if let d = c.donated {
            if size > 0 { _ = payload.withUnsafeBytes { pwrite(d, $0.baseAddress!, $0.count, 0) } }
            Glibc.close(d)
        }
        try client.close([c.open, c.control])
      }
    }
    try client.close([dir, root])
    return elapsed
}

func timeColdWalks(_ client: BenchClient, directory: String) throws -> (wall: Double, cpu: Double) {
    let root = try client.mount()
    let dir = try client.walk(root, directory)
    let elapsed = try measured {
        for i in 0..<smallFileCount {
            try client.close([try client.walk(dir, String(format: "f%04d", i))])
        }
    }
    try client.close([dir, root])
    return elapsed
}

func benchSmallFiles() throws {
    let hostRoot = makeTemporaryDirectory("sealed-bench-small-host")
    defer { try? FileManager.default.removeItem(atPath: hostRoot) }
    let sealedRoot = makeTemporaryDirectory("sealed-bench-small-store")
    defer { try? FileManager.default.removeItem(atPath: sealedRoot) }
    let (firstStore, key) = try newStore(sealedRoot)
    firstStore.close()

    var sides = [
        SmallFilesSide(name: "host") {
            let provider = try HostProvider(rootPath: hostRoot, logger: logger)
            let client = try BenchClient(server: Server(provider: provider))
            return (client, { client.shutdown() })
        },
    ]
    // With the creation pool (the default), then without it. A fresh provider starts with an
    // empty pool; it fills while the client mounts, as in a sandbox that starts.
    for pool in [true, false] {
        sides.append(SmallFilesSide(name: pool ? "sealed" : "sealed, no pool") {
            let store = try SealedStore.open(at: sealedRoot + "/store", key: key)
            var options = SealedProvider.Options()
            options.commitInterval = 0
            if !pool { options.creationPool = 0 }
            if ProcessInfo.processInfo.environment["BENCH_NO_READAHEAD"] != nil { options.readAheadSizes = false }
            let provider = try SealedProvider(store: store, options: options, logger: logger)
            let client = try BenchClient(server: Server(provider: provider))
            return (client, { client.shutdown(); provider.shutdown() })
        })
    }
    var creates = [[(wall: Double, cpu: Double)]](repeating: [], count: sides.count)
    var walks = creates, emptyCreates = creates
    for round in 0..<repeats {
        for (s, side) in sides.enumerated() {
            let (client, done) = try side.connect()
            creates[s].append(try timeCreates(client, directory: "r\(round)-\(s)"))
            done()
        }
        for (s, side) in sides.enumerated() {
            let (client, done) = try side.connect()
            walks[s].append(try timeColdWalks(client, directory: "r\(round)-\(s)"))
            done()
        }
        for (s, side) in sides.enumerated() {
            let (client, done) = try side.connect()
            emptyCreates[s].append(try timeCreates(client, directory: "e\(round)-\(s)", size: 0))
            done()
        }
    }
    func best(_ x: [(wall: Double, cpu: Double)]) -> (wall: Double, cpu: Double) {
        (x.map(\.wall).min() ?? .nan, x.map(\.cpu).min() ?? .nan)
    }
    print("small files (\(smallFileCount) per round), min of \(repeats) interleaved rounds, fresh provider each; under \(base)")
    print("row                     host wall s  sealed wall s  ratio   host cpu s  sealed cpu s  ratio   (no pool: wall s ratio, cpu s ratio)")
    for (label, rows) in [("create+write1k+close", creates), ("cold walk (stat)", walks), ("create+close (empty)", emptyCreates)] {
        let (h, s) = (best(rows[0]), best(rows[1]))
        var line = label.padding(toLength: 22, withPad: " ", startingAt: 0)
            + String(format: " %12.3f %14.3f %6.2fx %12.3f %13.3f %6.2fx", h.wall, s.wall, s.wall / h.wall, h.cpu, s.cpu, s.cpu / h.cpu)
        if rows.count > 2 {
            let n = best(rows[2])
            line += String(format: "   %.3f %.2fx, %.3f %.2fx", n.wall, n.wall / h.wall, n.cpu, n.cpu / h.cpu)
        }
        print(line)
    }
}
