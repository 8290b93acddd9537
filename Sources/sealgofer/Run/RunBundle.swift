import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the sealed (or passthrough) mount is backed by.
enum MountBacking {
    case store(path: String, keyFile: String?, passphraseFile: String?)
    case passthrough(path: String)
}

/// The temporary OCI bundle `sealgofer run` hands to the launcher:
///
///     DIR/config.json   the spec
///     DIR/mount-source/ the OCI source of the sealed mount: it must exist, as the stock
///                       gofer still bind-mounts it, but nothing reads or writes it
///     DIR/state/        runsc --root (container state), private to this run
///     DIR/sealgofer.log the server's stdout and stderr (unless --log names another file)
struct RunBundle {
    let directory: String
    var configPath: String { directory + "/config.json" }
    var mountSource: String { directory + "/mount-source" }
    var stateRoot: String { directory + "/state" }
    var defaultLog: String { directory + "/sealgofer.log" }

    /// Creates a fresh private directory under $TMPDIR (or /tmp).
    static func create() throws -> RunBundle {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/sealgofer-run.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CLIError.usage("cannot create a temporary directory under \(base): \(String(cString: strerror(errno)))")
        }
        let bundle = RunBundle(directory: String(cString: made))
        guard mkdir(bundle.mountSource, 0o700) == 0 else {
            throw CLIError.usage("mkdir \(bundle.mountSource): \(String(cString: strerror(errno)))")
        }
        return bundle
    }

    /// A private 0700 directory under /dev/shm for the server's scratch files, or nil (then
    /// the server makes its own).
    static func makeScratchDirectory() -> String? {
        var template = Array("/dev/shm/sealgofer-run-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { return nil }
        return String(cString: made)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Everything the spec is made from.
struct RunSpec {
    var command: [String]
    var environment: [String]
    var rootfs: String                 // "/" = the host's root
    var mountPoint: String             // where the sealed mount appears in the sandbox
    var backing: MountBacking
    var readonly: Bool
    var serverBinary: String
    var serverLog: String
    var serverLogLevel: String?
    var scratch: String?
    /// `serve --donate` for the sealed mount (nil: the server's default).
    var donation: String? = nil
    /// `serve --scratch-limit` for the sealed mount (nil: the server's default).
    var scratchLimit: String? = nil
    var workingDirectory: String
    /// Extra plain bind mounts, served by the stock gofer (for comparisons).
    var binds: [Bind] = []

    struct Bind {
        var source: String
        var destination: String
        var readonly: Bool
    }

    /// Capabilities of the container's root user: Docker's default set.
    static let capabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    /// The OCI annotations that hand the mount to sealgofer (see Integrations/runsc/README.md).
    var annotations: [String: String] {
        let prefix = "dev.sealgofer.mount.\(mountPoint)."
        var a = [
            "dev.sealgofer.binary": serverBinary,
            "dev.sealgofer.log": serverLog,
        ]
        if let serverLogLevel { a["dev.sealgofer.log-level"] = serverLogLevel }
        switch backing {
        case let .store(path, keyFile, passphraseFile):
            a[prefix + "store"] = path
            if let keyFile { a[prefix + "key-file"] = keyFile }
            if let passphraseFile { a[prefix + "passphrase-file"] = passphraseFile }
        case let .passthrough(path):
            a[prefix + "passthrough"] = path
        }
        if let scratch { a[prefix + "scratch"] = scratch }
        if readonly { a[prefix + "readonly"] = "true" }
        if let donation { a[prefix + "donate"] = donation }
        if let scratchLimit { a[prefix + "scratch-limit"] = scratchLimit }
        return a
    }

    /// The spec as a JSON object. The root is always read-only; /tmp is a private tmpfs
    /// (unless the sealed mount is /tmp) so ordinary programs find a writable temp directory.
    func config(mountSource: String) -> [String: Any] {
        let caps = Self.capabilities
        var mounts: [[String: Any]] = [
            ["destination": "/proc", "type": "proc", "source": "proc"],
            ["destination": "/dev", "type": "tmpfs", "source": "tmpfs"],
            ["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]],
        ]
        if mountPoint != "/tmp" {
            mounts.append(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]])
        }
        mounts.append(["destination": mountPoint, "type": "bind", "source": mountSource,
                       "options": ["rbind", readonly ? "ro" : "rw"]])
        for bind in binds {
            mounts.append(["destination": bind.destination, "type": "bind", "source": bind.source,
                           "options": ["rbind", bind.readonly ? "ro" : "rw"]])
        }
        return [
            "ociVersion": "1.0.0",
            "process": [
                "terminal": false,
                "user": ["uid": 0, "gid": 0],
                "args": command,
                "env": environment,
                "cwd": workingDirectory,
                "capabilities": ["bounding": caps, "effective": caps, "inheritable": caps, "permitted": caps],
                "rlimits": [["type": "RLIMIT_NOFILE", "hard": 65536, "soft": 65536]],
                "noNewPrivileges": true,
            ] as [String: Any],
            "root": ["path": rootfs, "readonly": true],
            "hostname": "sealgofer",
            "mounts": mounts,
            "annotations": annotations,
            "linux": [
                "namespaces": ["pid", "network", "ipc", "uts", "mount"].map { ["type": $0] },
            ],
        ]
    }

    func write(to bundle: RunBundle) throws {
        let data = try JSONSerialization.data(
            withJSONObject: config(mountSource: bundle.mountSource),
            options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        guard FileManager.default.createFile(atPath: bundle.configPath, contents: data,
                                             attributes: [.posixPermissions: 0o600]) else {
            throw CLIError.usage("cannot write \(bundle.configPath)")
        }
    }
}
