import FuzzDriver
import Glibc
import HostProvider
import Lisafs
import Logging

// Dispatch of decoded messages against a HostProvider serving a throwaway
// directory (tmpfs), in process: a connection is fed the input's requests
// through a replaying communicator, exactly as the socket or a channel would
// deliver them, then torn down as on a hang-up.
//
// Input: records of [u16 MID][u16 length][payload] (little-endian; a length
// past the end takes what is left), at most 64 per input.
//
// Checked for every input:
// - no trap, no out-of-bounds access (ASan), no allocation over 64 MiB;
// - every request gets exactly one response: its own MID or Error (MID 0),
//   an Error payload decodes, no payload exceeds the message size;
// - after teardown every host FD is closed again (donated FDs are closed here);
// - nothing outside the served directory changed: a sentinel directory next
//   to it keeps its entries and its file its size, mode, mtime and ctime, and
//   no new entry appears beside the two.

let maxRecords = 64
let maxMessageSize = MountResp.recommendedMaxMessageSize

final class ReplayCommunicator: ServerCommunicator {
    let requests: [InboundRequest]
    private var next = 0
    private var answered = 0

    init(_ requests: [InboundRequest]) { self.requests = requests }

    func receive() throws -> InboundRequest? {
        guard next < requests.count else { return nil }
        defer { next += 1 }
        return requests[next]
    }

    func send(mid: UInt16, payload: [UInt8], fds: [Int32]) throws {
        for fd in fds { _ = close(fd) }
        let request = requests[next - 1]
        guard answered == next - 1 else { fatalError("two responses to request \(next - 1)") }
        answered += 1
        guard payload.count <= Int(maxMessageSize) else { fatalError("MID \(mid): \(payload.count)-byte response") }
        if mid == MID.error.rawValue {
            guard (try? ErrorResp.decode(payload)) != nil else { fatalError("malformed Error response to MID \(request.mid)") }
            guard fds.isEmpty else { fatalError("Error response to MID \(request.mid) carried FDs") }
        } else if mid != request.mid {
            fatalError("request MID \(request.mid) answered with MID \(mid)")
        }
    }

    func shutdown() {}

    var unanswered: Int { next - answered }
}

/// The throwaway tree: BASE/served (reset per input) and BASE/sentinel.
enum Tree {
    static let base: String = {
        var template = Array("/dev/shm/sealgofer-fuzz-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { fatalError("mkdtemp") }
        let path = String(cString: made)
        mkdir(path + "/sentinel", 0o755)
        write(path + "/sentinel/secret", "TOP SECRET\n")
        mkdir(path + "/served", 0o755)
        // libFuzzer ends with exit(), so clean up from there.
        atexit { Tree.removeContentsAndBase() }
        return path
    }()
    static var served: String { base + "/served" }

    static func write(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { fatalError("create \(path): \(errno)") }
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    static func reset() {
        let fd = open(served, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { fatalError("open served: \(errno)") }
        fchmod(fd, 0o755)
        removeContents(of: fd)
        close(fd)
        write(served + "/file", "hello, served\n")
        mkdir(served + "/dir", 0o755)
        write(served + "/dir/inner", "inner\n")
        symlink("file", served + "/link")
        symlink("../sentinel/secret", served + "/escape")
        symlink("/etc/passwd", served + "/absolute")
        mkfifo(served + "/fifo", 0o644)
    }

    /// Empties a directory without following symlinks. Names are raw bytes:
    /// the fuzzer creates names that are not UTF-8.
    static func removeContents(of dirFD: Int32) {
        let dup = fcntl(dirFD, F_DUPFD_CLOEXEC, 0)
        guard dup >= 0, let dir = fdopendir(dup) else { return }
        defer { closedir(dir) }
        var names: [[CChar]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 }).map { CChar(bitPattern: $0) } + [0]
            }
            if name != [46, 0] && name != [46, 46, 0] { names.append(name) }
        }
        for name in names {
            if unlinkat(dirFD, name, 0) == 0 { continue }
            let child = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child >= 0 {
                fchmod(child, 0o755)
                removeContents(of: child)
                close(child)
            }
            if unlinkat(dirFD, name, AT_REMOVEDIR) != 0 { fatalError("cannot remove \(name): \(errno)") }
        }
    }

    static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        return names.sorted()
    }

    struct Fingerprint: Equatable {
        var baseEntries: [String]
        var sentinelEntries: [String]
        var size: Int64, mode: UInt32, mtime: Int, mtimeNS: Int, ctime: Int, ctimeNS: Int
    }

    static func sentinel() -> Fingerprint {
        var st = stat()
        guard lstat(base + "/sentinel/secret", &st) == 0 else { fatalError("sentinel/secret is gone") }
        return Fingerprint(baseEntries: entries(base), sentinelEntries: entries(base + "/sentinel"),
                           size: Int64(st.st_size), mode: st.st_mode, mtime: st.st_mtim.tv_sec, mtimeNS: st.st_mtim.tv_nsec,
                           ctime: st.st_ctim.tv_sec, ctimeNS: st.st_ctim.tv_nsec)
    }
}

func openFDCount() -> Int { Tree.entries("/proc/self/fd").count }

var quietLogger: Logger = {
    var logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    logger.logLevel = .critical
    return logger
}()

let sentinelBefore: Tree.Fingerprint = { _ = Tree.base; return Tree.sentinel() }()

func parseRecords(_ data: UnsafeRawBufferPointer) -> [InboundRequest] {
    var requests: [InboundRequest] = []
    var offset = 0
    while offset + 4 <= data.count && requests.count < maxRecords {
        let mid = UInt16(data[offset]) | UInt16(data[offset + 1]) << 8
        let length = Int(UInt16(data[offset + 2]) | UInt16(data[offset + 3]) << 8)
        offset += 4
        let end = min(data.count, offset + length)
        requests.append(InboundRequest(mid: mid, payload: Array(data[offset..<end])))
        offset = end
    }
    return requests
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDispatch(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let requests = parseRecords(UnsafeRawBufferPointer(start: data, count: size))
    guard !requests.isEmpty else { return 0 }
    Tree.reset()
    let fdsBefore = openFDCount()
    do {
        let provider: HostProvider
        do {
            provider = try HostProvider(rootPath: Tree.served, options: .init(allowSockets: false, allowFifos: true),
                                        logger: quietLogger)
        } catch {
            fatalError("HostProvider: \(error)")
        }
        let options = Server<HostProvider>.Options(maxMessageSize: maxMessageSize, maxChannelsPerConnection: 4,
                                                   maxFDsPerConnection: 256)
        // Channels would start flipcall threads nobody connects to: refused
        // as a server at its limit refuses them.
        let server = Server(provider: provider, options: options, logger: quietLogger,
                            channelFactory: { _ in throw Errno.ENOMEM })
        let communicator = ReplayCommunicator(requests)
        server.serve(communicator: communicator)
        guard communicator.unanswered == 0 else { fatalError("\(communicator.unanswered) requests never answered") }
    }
    let fdsAfter = openFDCount()
    guard fdsAfter == fdsBefore else { fatalError("host FD leak: \(fdsBefore) open before, \(fdsAfter) after teardown") }
    let sentinelAfter = Tree.sentinel()
    guard sentinelAfter == sentinelBefore else { fatalError("outside the served directory changed: \(sentinelBefore) -> \(sentinelAfter)") }
    return 0
}

@_cdecl("FuzzDispatch_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzDispatch(data, size) }
}

extension Tree {
    static func removeContentsAndBase() {
        let fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { removeContents(of: fd); close(fd) }
        rmdir(base)
    }
}
