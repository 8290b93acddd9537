import CLinux
import Foundation
import Lisafs
@testable import SealedStore
import XCTest

/// No key material reaches the log: `serve --store` at --log-level trace runs
/// a workload (creates, writes, commits, renames, failures, SIGTERM), then the
/// log is searched for the key file's bytes, the unwrapped master key and a
/// file's derived keys — raw, as hex (either case) and as base64.
final class KeyHygieneTests: XCTestCase {
    func testTraceLogHoldsNoKeyMaterial() throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let child = try CrashTests.Child.start(fixture, extra: ["--log-level", "trace", "--commit-interval", "0.05"])
        var reaped = false
        defer { if !reaped { child.kill() } }
        let client = child.client
        let root = try client.mount().root.controlFD
        for name in ["one", "two", "three"] {
            let made = try client.create(root, name)
            if let host = made.donated {
                try hostWrite(host, Array("secret plaintext of \(name)".utf8), at: 0)
                Glibc.close(host)
            }
            try client.pwrite(made.fd, Array(repeating: 0x42, count: 70_000), at: 100)
            try client.flush(made.fd)
            try client.fsync([made.fd])
            try client.close([made.fd, made.inode.controlFD])
        }
        try client.rename(root, "one", root, "uno")
        try client.unlink(root, "two")
        XCTAssertNotNil(client.errno { try client.lookup(root, "missing") })
        XCTAssertNotNil(client.errno { try client.unlink(root, "missing") })
        let open = try client.open(try client.lookup(root, "three").controlFD, flags: O_RDWR)
        try client.pwrite(open.fd, Array("left for the shutdown commit".utf8), at: 0)
        usleep(150_000)
        XCTAssertEqual(Glibc.kill(child.pid, SIGTERM), 0)
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child.pid, &status, 0), child.pid)
        reaped = true
        client.shutdown()
        if let host = open.donated { Glibc.close(host) }
        XCTAssertEqual(status, 0)

        let log = Array(FileManager.default.contents(atPath: fixture.root + "/serve.log") ?? Data())
        let text = String(decoding: log, as: UTF8.self)
        XCTAssertTrue(text.contains(" trace ") || text.contains(" debug "), "no trace/debug lines: the test would prove nothing:\n\(text)")
        XCTAssertTrue(text.contains("commit"), text)

        var secrets: [(String, [UInt8])] = []
        secrets.append(("key file", Array(FileManager.default.contents(atPath: fixture.keyPath) ?? Data())))
        try fixture.withStore { store in
            let epoch = store.keyring.currentEpoch
            let master = try XCTUnwrap(store.keyring.masterKey(epoch: epoch))
            secrets.append(("master key", master.exposedCopy()))
            let fd = clinux_openat(store.dataDirectory, "uno", O_RDONLY | O_CLOEXEC, 0)
            XCTAssertGreaterThanOrEqual(fd, 0)
            defer { Glibc.close(fd) }
            let file = try store.openFile(descriptor: fd)
            defer { file.close() }
            let keys = FileKeys(master: master, epoch: epoch, fileID: file.id)
            for (name, key) in [("data", keys.data), ("header", keys.header), ("sidecar", keys.sidecar),
                                ("journal", keys.journal), ("digest", keys.digest)] {
                secrets.append(("file \(name) key", key.exposedCopy()))
            }
        }
        XCTAssertEqual(secrets.first?.1.count, 32)
        for (name, secret) in secrets {
            XCTAssertEqual(secret.count, 32, name)
            let hex = secret.map { String(format: "%02x", $0) }.joined()
            let encodings: [(String, [UInt8])] = [
                ("raw", secret),
                ("hex", Array(hex.utf8)),
                ("HEX", Array(hex.uppercased().utf8)),
                ("base64", Array(Data(secret).base64EncodedString().utf8)),
                ("16-byte prefix", Array(secret.prefix(16))),
                ("hex of the first 12 bytes", Array(hex.prefix(24).utf8)),
            ]
            for (encoding, needle) in encodings {
                XCTAssertFalse(log.containsSubsequence(needle), "\(name) appears in the log (\(encoding))")
            }
        }
    }
}
