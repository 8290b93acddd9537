import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The host side of one test:
///
///     <base>/served/          the directory the gofer serves
///         file                "hello, served\n"
///         dir/inner           "inner\n"
///         to-root       ->    /
///         to-sentinel   ->    ../sentinel
///         to-secret     ->    ../sentinel/secret
///         dangling-in-sentinel -> ../sentinel/<escape name>
///         dangling-abs  ->    /tmp/<escape name>
///     <base>/sentinel/        must never change
///         secret              "TOP SECRET\n", xattr user.sentinel
///         sub/deep
///
/// The sentinel's files get old, distinct atime < mtime, so that under
/// relatime even a read through an escape would change the atime; ctime
/// catches chmod/chown/link/xattr changes. The snapshot never reads file
/// contents (that would itself change atimes).
final class Sandbox {
    let base: String
    let served: String
    let sentinel: String
    let logPath: String
    /// A name that must never appear anywhere outside the served tree.
    let escapeName: String

    static let servedFileContents = "hello, served\n"
    static let secretContents = "TOP SECRET\n"

    /// `parent` is where the sandbox directory is made (/tmp by default;
    /// tests that need thousands of metadata operations use tmpfs).
    init(parent: String = "/tmp") throws {
        var template = Array("\(parent)/sealgofer-hostile-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw GoferSpawnError.system("mkdtemp", errno)
        }
        base = String(cString: made)
        served = base + "/served"
        sentinel = base + "/sentinel"
        logPath = base + ".log"
        escapeName = "sealgofer-escape-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        try mkdir(served)
        try write(served + "/file", Self.servedFileContents)
        try mkdir(served + "/dir")
        try write(served + "/dir/inner", "inner\n")
        try symlink("/", at: served + "/to-root")
        try symlink("../sentinel", at: served + "/to-sentinel")
        try symlink("../sentinel/secret", at: served + "/to-secret")
        try symlink("../sentinel/" + escapeName, at: served + "/dangling-in-sentinel")
        try symlink("/tmp/" + escapeName, at: served + "/dangling-abs")

        try mkdir(sentinel)
        try write(sentinel + "/secret", Self.secretContents, mode: 0o600)
        guard LibcShims.setxattr(sentinel + "/secret", "user.sentinel", "untouched", 9, 0) == 0 else {
            throw GoferSpawnError.system("setxattr", errno)
        }
        try mkdir(sentinel + "/sub")
        try write(sentinel + "/sub/deep", "deep\n")
        for (i, path) in [sentinel + "/secret", sentinel + "/sub/deep", sentinel + "/sub", sentinel].enumerated() {
            try setTimes(path, atime: 1_000_000_000 + i, mtime: 1_000_000_500 + i)
        }
    }

    /// Deletes the sandbox without ever following a symlink (the served tree
    /// holds links to / and the tests create more).
    func remove() {
        Self.removeTree(base)
        unlink(logPath)
    }

    private static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            _ = chmod(path, 0o700)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                removeTree(path + "/" + name)
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    // MARK: Escape detection

    /// One line per path outside the served tree: type, mode, size, nlink,
    /// times (atime only for regular files), symlink target, xattrs.
    func snapshot() -> [String: String] {
        var result: [String: String] = [:]
        func visit(_ path: String, _ relative: String) {
            var st = stat()
            guard lstat(path, &st) == 0 else {
                result[relative] = "lstat failed: errno \(errno)"
                return
            }
            let type = st.st_mode & S_IFMT
            var line = "mode=\(String(st.st_mode, radix: 8)) uid=\(st.st_uid) gid=\(st.st_gid) nlink=\(st.st_nlink) "
                + "size=\(st.st_size) ino=\(st.st_ino) "
                + "mtime=\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) ctime=\(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
            if type == S_IFREG { line += " atime=\(st.st_atim.tv_sec).\(st.st_atim.tv_nsec)" }
            if type == S_IFLNK {
                line += " -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")
            }
            line += " xattrs=" + xattrs(path).joined(separator: ",")
            result[relative] = line
            if type == S_IFDIR {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                for name in names.sorted() where !(relative == "." && name == "served") {
                    visit(path + "/" + name, relative + "/" + name)
                }
            }
        }
        visit(base, ".")
        return result
    }

    /// Paths outside the sandbox where an escape would create `escapeName`.
    var escapeCandidates: [String] {
        ["/" + escapeName, "/tmp/" + escapeName, base + "/" + escapeName, sentinel + "/" + escapeName,
         "/etc/" + escapeName, sentinel + "/sub/" + escapeName]
    }

    func existingEscapes() -> [String] {
        escapeCandidates.filter { path in
            var st = stat()
            return lstat(path, &st) == 0
        }
    }

    private func xattrs(_ path: String) -> [String] {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = LibcShims.llistxattr(path, &buffer, buffer.count)
        guard n > 0 else { return [] }
        let names = buffer[0..<n].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return names.sorted().map { name in
            var value = [UInt8](repeating: 0, count: 256)
            let m = LibcShims.lgetxattr(path, name, &value, value.count)
            return "\(name)=" + (m >= 0 ? String(decoding: value[0..<m], as: UTF8.self) : "errno\(errno)")
        }
    }

    // MARK: Host helpers (the test's own, trusted access)

    func mkdir(_ path: String) throws {
        guard Glibc.mkdir(path, 0o755) == 0 else { throw GoferSpawnError.system("mkdir \(path)", errno) }
    }

    func write(_ path: String, _ contents: String, mode: mode_t = 0o644) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8),
                                             attributes: [.posixPermissions: Int(mode)]) else {
            throw GoferSpawnError.system("create \(path)", errno)
        }
    }

    func symlink(_ target: String, at path: String) throws {
        guard Glibc.symlink(target, path) == 0 else { throw GoferSpawnError.system("symlink \(path)", errno) }
    }

    func setTimes(_ path: String, atime: Int, mtime: Int) throws {
        var times = [timespec(tv_sec: atime, tv_nsec: 0), timespec(tv_sec: mtime, tv_nsec: 0)]
        guard utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw GoferSpawnError.system("utimensat \(path)", errno)
        }
    }

    /// lstat of a path inside the served tree (nil if absent).
    func lstatServed(_ relative: String) -> stat? {
        var st = stat()
        return lstat(served + "/" + relative, &st) == 0 ? st : nil
    }

    func readServed(_ relative: String) -> String? {
        FileManager.default.contents(atPath: served + "/" + relative).map { String(decoding: $0, as: UTF8.self) }
    }
}
