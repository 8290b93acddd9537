import CLinux
import Foundation
import Lisafs
import SealedProvider
import SealedStore
import XCTest

/// An fsx-style random workload against a lisafs client, every step checked
/// against an in-memory model of the files (names → inodes → bytes).
///
/// Shared by the model test (in-process server, restarts between phases) and
/// the crash test (a `sealgofer serve` child killed at random instants).
struct ModelWorkload {
    struct Handle {
        var inode: Int
        var fd: FDID
        var host: Int32?
        var readable: Bool
        var writable: Bool
    }

    var random: SeededRandom
    let chunk: Int
    let maxSize: Int
    let names = ["a", "b", "c", "d", "e"]
    var contents: [Int: [UInt8]] = [:]
    var links: [String: Int] = [:]
    var handles: [Handle] = []
    var nextInode = 0
    /// Renames, links, unlinks and creates (off for the crash test: the store's
    /// file creation and the removal of a last link's sidecar are not atomic).
    var namespaceOperations = true
    /// Per inode, the content as of its last acknowledged commit trigger, and the
    /// trigger in flight (a crash may land before or after it).
    var committed: [Int: [UInt8]] = [:]
    var inflight: (inode: Int, content: [UInt8])? = nil
    /// Contents each inode had since its last commit (crash-test diagnostics).
    var history: [Int: [(step: Int, content: [UInt8])]] = [:]
    var keepsHistory = false

    mutating func remember(_ inode: Int) {
        guard keepsHistory else { return }
        history[inode, default: []].append((steps, contents[inode] ?? []))
    }
    var log: [String] = []
    var steps = 0
    static let echo = ProcessInfo.processInfo.environment["SEALGOFER_TEST_LOG"] != nil
    let traceLength = Int(ProcessInfo.processInfo.environment["SEALGOFER_FSX_TRACE"] ?? "") ?? 40

    init(seed: UInt64, chunk: Int, maxSize: Int) {
        random = SeededRandom(seed: seed)
        self.chunk = chunk
        self.maxSize = maxSize
    }

    mutating func note(_ s: String) {
        log.append("#\(steps) \(s)")
        if ModelWorkload.echo { fputs("model #\(steps) \(s)\n", stderr) }
        if log.count > traceLength { log.removeFirst() }
    }

    var trace: String { log.joined(separator: "\n") }

    /// Runs an RPC that commits `inode`'s current content (Flush, FSync, Close,
    /// SetStat(size), O_TRUNC open), tracking what is committed.
    mutating func committing<T>(_ inode: Int, _ body: () throws -> T) throws -> T {
        inflight = (inode, contents[inode] ?? [])
        let result = try body()
        committed[inode] = inflight!.content
        inflight = nil
        if keepsHistory { history[inode] = [] }
        return result
    }

    // MARK: Random choices

    mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &random) < p }

    mutating func offset(for size: Int) -> Int {
        switch int(0..<4) {
        case 0: return size                                         // append
        case 1: return int(0..<(max(1, size)))                       // inside
        case 2: return int(0..<(size + 3 * chunk))                   // maybe a hole
        default: return (int(0..<(max(1, size / chunk + 1)))) * chunk // chunk-aligned
        }
    }

    mutating func data(_ count: Int) -> [UInt8] {
        let seed = UInt8(truncatingIfNeeded: int(0..<256))
        return (0..<count).map { seed &+ UInt8(truncatingIfNeeded: $0 &* 7) }
    }

    // MARK: Model updates

    mutating func modelWrite(_ inode: Int, _ bytes: [UInt8], at offset: Int) {
        var c = contents[inode]!
        if c.count < offset + bytes.count { c += [UInt8](repeating: 0, count: offset + bytes.count - c.count) }
        c.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        contents[inode] = c
        remember(inode)
    }

    mutating func modelTruncate(_ inode: Int, _ size: Int) {
        var c = contents[inode]!
        if c.count > size { c.removeLast(c.count - size) } else { c += [UInt8](repeating: 0, count: size - c.count) }
        contents[inode] = c
        remember(inode)
    }

    /// Inodes still reachable by a name or an open handle.
    mutating func collectGarbage() {
        let live = Set(links.values).union(handles.map(\.inode))
        for k in contents.keys where !live.contains(k) { contents[k] = nil }
    }

    // MARK: One step

    /// Runs one random operation through `client` (root control FD `root`) and
    /// checks what it can. `commitPoint` is called with the inode states a
    /// commit-triggering RPC is about to seal (for the crash test).
    mutating func step(_ client: LisafsClient, root: FDID, fsyncs: Bool = true) throws {
        steps += 1
        if handles.isEmpty || chance(0.12) { try openSomething(client, root: root); return }
        let h = int(0..<handles.count)
        let handle = handles[h]
        let size = contents[handle.inode]!.count
        switch int(0..<100) {
        case 0..<22 where handle.writable && handle.host != nil:
            let off = offset(for: size)
            let len = min(int(1..<(3 * chunk)), maxSize - off)
            guard len > 0 else { return }
            let bytes = data(len)
            note("host write ino\(handle.inode) @\(off) +\(len)")
            try hostWrite(handle.host!, bytes, at: UInt64(off))
            modelWrite(handle.inode, bytes, at: off)
        case 0..<34 where handle.writable:
            let off = offset(for: size)
            let len = min(int(1..<(2 * chunk)), maxSize - off)
            guard len > 0 else { return }
            let bytes = data(len)
            note("pwrite ino\(handle.inode) @\(off) +\(len)")
            let written = try client.pwrite(handle.fd, bytes, at: UInt64(off))
            guard written == UInt64(len) else { throw ModelMismatch("pwrite wrote \(written) of \(len) bytes") }
            modelWrite(handle.inode, bytes, at: off)
        case 34..<50 where handle.readable:
            let off = int(0..<(size + chunk))
            let len = int(1..<(3 * chunk))
            let expected = Array(contents[handle.inode]![min(off, size)..<min(size, off + len)])
            let viaHost = handle.host != nil && chance(0.5)
            note("read ino\(handle.inode) @\(off) +\(len) \(viaHost ? "host" : "rpc")")
            let got = viaHost ? try hostRead(handle.host!, count: len, at: UInt64(off))
                              : try client.pread(handle.fd, count: UInt32(len), at: UInt64(off))
            guard got == expected else {
                throw ModelMismatch("read of inode \(handle.inode) at \(off)+\(len): got \(got.count) bytes, expected \(expected.count)"
                                    + (got.count == expected.count ? ", first difference at \(zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1)" : ""))
            }
        case 50..<58:
            let newSize = chance(0.5) ? int(0..<(size + 1)) : int(0..<maxSize)
            note("truncate ino\(handle.inode) to \(newSize)")
            guard let name = links.first(where: { $0.value == handle.inode })?.key else { return }
            let control = try client.lookup(root, name).controlFD
            modelTruncate(handle.inode, newSize)
            try committing(handle.inode) { try client.setSize(control, UInt64(newSize)) }
            try client.close([control])
        case 58..<66:
            note("fstat ino\(handle.inode)")
            let st = try client.fstat(handle.fd)
            guard st.size == UInt64(size) else { throw ModelMismatch("fstat of inode \(handle.inode): \(st.size), expected \(size)") }
        case 66..<78:
            note("flush ino\(handle.inode)")
            try committing(handle.inode) { try client.flush(handle.fd) }
        case 78..<82 where fsyncs:
            note("fsync ino\(handle.inode)")
            try committing(handle.inode) { try client.fsync([handle.fd]) }
        case 82..<90:
            note("close ino\(handle.inode)")
            try closeHandle(client, h)
        case 90..<95 where namespaceOperations:
            try renameOrLink(client, root: root)
        case 90...:
            guard namespaceOperations else { return }
            guard let name = links.keys.sorted().randomElement(using: &random) else { return }
            note("unlink \(name)")
            try client.unlink(root, name)
            links[name] = nil
            collectGarbage()
        default:
            break   // the operation drawn does not apply to this handle
        }
    }

    mutating func closeHandle(_ client: LisafsClient, _ index: Int) throws {
        let handle = handles.remove(at: index)
        if let host = handle.host { Glibc.close(host) }
        try committing(handle.inode) { try client.close([handle.fd]) }
        collectGarbage()
    }

    mutating func openSomething(_ client: LisafsClient, root: FDID) throws {
        let name = names[int(0..<names.count)]
        if links[name] == nil && !namespaceOperations { return }
        if let inode = links[name] {
            let mode = int(0..<4)
            let flags: Int32 = mode == 0 ? O_RDONLY : mode == 3 ? O_RDWR | O_TRUNC : O_RDWR
            note("open \(name) ino\(inode) flags \(flags)")
            let control = try client.lookup(root, name).controlFD
            if flags & O_TRUNC != 0 { contents[inode] = [] }
            // Only a truncating open commits (the truncation).
            let opened = flags & O_TRUNC != 0 ? try committing(inode) { try client.open(control, flags: flags) }
                                              : try client.open(control, flags: flags)
            try client.close([control])
            handles.append(Handle(inode: inode, fd: opened.fd, host: opened.donated, readable: true, writable: flags != O_RDONLY))
        } else {
            note("create \(name) ino\(nextInode)")
            let created = try client.create(root, name)
            try client.close([created.inode.controlFD])
            links[name] = nextInode
            contents[nextInode] = []
            committed[nextInode] = []
            handles.append(Handle(inode: nextInode, fd: created.fd, host: created.donated, readable: true, writable: true))
            nextInode += 1
        }
    }

    mutating func renameOrLink(_ client: LisafsClient, root: FDID) throws {
        guard let from = links.keys.sorted().randomElement(using: &random) else { return }
        let to = names[int(0..<names.count)]
        guard from != to else { return }
        if chance(0.3) && links[to] == nil {
            note("link \(from) -> \(to)")
            let target = try client.lookup(root, from).controlFD
            let made = try client.link(root, to, target: target)
            try client.close([target, made.controlFD])
            links[to] = links[from]
        } else {
            note("rename \(from) -> \(to)\(links[to] != nil ? " (replacing)" : "")")
            try client.rename(root, from, root, to)
            // Renaming one hard link onto another of the same file does nothing.
            if links[to] != links[from] {
                links[to] = links[from]
                links[from] = nil
            }
            collectGarbage()
        }
    }

    /// Closes every handle (each close commits).
    mutating func closeAll(_ client: LisafsClient) throws {
        while !handles.isEmpty { try closeHandle(client, handles.count - 1) }
    }

    /// Compares the committed content of every name with the model (store offline).
    func checkCommitted(_ fixture: StoreFixture) throws {
        let present = Set((try? FileManager.default.contentsOfDirectory(atPath: fixture.storePath + "/data")) ?? [])
        guard present == Set(links.keys) else { throw ModelMismatch("names \(present.sorted()) expected \(links.keys.sorted())") }
        try fixture.withStore { store in
            for (name, inode) in links {
                let got = try StoreFixture.plaintext(store, name)
                guard got == contents[inode] else {
                    throw ModelMismatch("committed \(name) (inode \(inode)) has \(got?.count ?? -1) bytes, model \(contents[inode]?.count ?? -1)")
                }
            }
        }
    }
}

struct ModelMismatch: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Test-length knobs from the environment.
enum TestEnvironment {
    static func value(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }
    static func seed(_ name: String) -> UInt64 { value(name).flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64(UInt32.max)) }
    static var isLong: Bool { value("SEALGOFER_LONG_TESTS") == "1" }
}
