import CLinux
import Foundation
import Lisafs
import Logging
import SealedProvider
import SealedStore
import XCTest

/// A fresh sealed store in a temporary directory, with its key file and a
/// scratch directory of its own.
final class StoreFixture {
    let root: String
    var storePath: String { root + "/store" }
    var keyPath: String { root + "/key" }
    var scratchPath: String { root + "/scratch" }
    let key: KeyMaterial

    init(chunkSize: Int = 4096) throws {
        var template = Array("/tmp/sealedprovider-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { throw Errno.current }
        root = String(cString: made)
        key = try KeyMaterial.createKeyFile(path: root + "/key")
        try SealedStore.initialize(at: root + "/store", key: key, chunkSize: chunkSize)
        mkdir(root + "/scratch", 0o700)
    }

    func options(_ configure: (inout SealedProvider.Options) -> Void = { _ in }) -> SealedProvider.Options {
        var o = SealedProvider.Options()
        o.scratchDirectory = scratchPath
        o.commitInterval = 0
        configure(&o)
        return o
    }

    func provider(_ options: SealedProvider.Options? = nil) throws -> SealedProvider {
        let store = try SealedStore.open(at: storePath, key: key)
        var logger = Logger(label: "test.sealed")
        logger.logLevel = ProcessInfo.processInfo.environment["SEALGOFER_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        return try SealedProvider(store: store, options: options ?? self.options(), logger: logger)
    }

    /// Opens the store offline (the provider must be shut down) and runs `body`.
    func withStore<T>(_ body: (SealedStore) throws -> T) throws -> T {
        let store = try SealedStore.open(at: storePath, key: key)
        defer { store.close() }
        return try body(store)
    }

    func verify() throws -> VerifyReport { try withStore { Verifier.run(store: $0) } }

    /// The committed plaintext of data/`path`, read offline; nil when absent.
    func plaintext(_ path: String) throws -> [UInt8]? {
        try withStore { store in try StoreFixture.plaintext(store, path) }
    }

    static func plaintext(_ store: SealedStore, _ path: String) throws -> [UInt8]? {
        let parts = path.split(separator: "/").map(String.init)
        var dir = store.dataDirectory
        var owned: [Int32] = []
        defer { owned.forEach { _ = Glibc.close($0) } }
        for part in parts.dropLast() {
            let fd = clinux_openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
            guard fd >= 0 else { return nil }
            owned.append(fd)
            dir = fd
        }
        let fd = clinux_openat(dir, parts.last!, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        let file = try store.openFile(descriptor: fd)
        defer { file.close() }
        return try file.read(offset: 0, count: Int(file.committedSize))
    }

    /// Paths of regular files under `dir` whose bytes contain `marker`.
    static func filesContaining(_ marker: [UInt8], under dir: String) -> [String] {
        var hits: [String] = []
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return hits }
        for case let relative as String in walker {
            let path = dir + "/" + relative
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            if Array(data).containsSubsequence(marker) { hits.append(relative) }
        }
        return hits
    }

    /// Number of sidecars and journals of files in the store (for namespace
    /// bookkeeping checks). Sidecars of the creation pool's entries (`<id>.new` in
    /// meta/pending: files made ahead, not created yet) are not counted. Sidecars
    /// are listed first: an entry's `.new` exists before its sidecar and goes only
    /// by becoming a file, so no entry is miscounted by a pool refilling meanwhile.
    /// Sidecars (of named files: the creation pool's are left out) and journals on disk. The
    /// pool's thread may be refilling meanwhile, and a directory listing taken while entries come
    /// and go can be inconsistent, so the count is read until two readings in a row agree.
    func metadataCount() -> (sidecars: Int, journals: Int) {
        var last = metadataCountOnce()
        for _ in 0..<200 {
            let next = metadataCountOnce()
            if next == last { return next }
            last = next
            usleep(5_000)
        }
        return last
    }

    private func metadataCountOnce() -> (sidecars: Int, journals: Int) {
        var sidecarIDs: [String] = []
        if let walker = FileManager.default.enumerator(atPath: storePath + "/meta/files") {
            for case let p as String in walker where p.hasSuffix(".sc") {
                sidecarIDs.append(String(p.split(separator: "/").last!.dropLast(3)))
            }
        }
        let pooled = Set(((try? FileManager.default.contentsOfDirectory(atPath: storePath + "/meta/pending")) ?? [])
            .filter { $0.hasSuffix(".new") }.map { String($0.dropLast(4)) })
        let sidecars = sidecarIDs.filter { !pooled.contains($0) }.count
        let journals = ((try? FileManager.default.contentsOfDirectory(atPath: storePath + "/meta/journal")) ?? [])
            .filter { $0.hasSuffix(".j") }.count
        return (sidecars, journals)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        let first = needle[0]
        var i = 0
        while i <= count - needle.count {
            if self[i] == first && self[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

/// Deterministic pseudo-random numbers (SplitMix64) so failing seeds reproduce.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Writes all of `bytes` to a host FD at `offset` (the donated-FD path).
func hostWrite(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64) throws {
    try bytes.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
            guard n > 0 else { throw Errno.current }
            done += n
        }
    }
}

func hostRead(_ fd: Int32, count: Int, at offset: UInt64) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, count, off_t(offset)) }
    guard n >= 0 else { throw Errno.current }
    return Array(out.prefix(n))
}

func hostSize(_ fd: Int32) -> Int64 {
    var st = stat()
    fstat(fd, &st)
    return Int64(st.st_size)
}
