import CLinux
import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

/// The chosen coordination (Keys/README.md §10.4): a gofer serving the store holds its lock;
/// `rotate` (and `rotate --retire`) refuse with exit 3 and a clear message while it runs, and
/// work after it exits. `rekey` runs beside it; the gofer keeps serving with its unwrapped keys.
final class StoreLockTests: XCTestCase {
    func testRotateRefusesWhileServedRekeyDoesNot() throws {
        let f = try StoreFixture.make("lock", files: 40, seed: 13)
        let inodes = Set(try f.capture().ids.values).count
        let scratchDir = f.scratch.sub("scratch")
        try FileManager.default.createDirectory(atPath: scratchDir, withIntermediateDirectories: true)
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(clinux_stream_pair(&pair), 0)
        let gofer = try CLI.spawn(["serve", "--fd", "3", "--store", f.storePath, "--key-file", f.keyPath,
                                   "--scratch", scratchDir, "--commit-interval", "0"], extraFD: pair[1])
        close(pair[1])
        let client = MiniLisafsClient(connectedFD: pair[0])
        var goferDone = false
        defer { if !goferDone { kill(gofer.pid, SIGKILL); _ = gofer.wait() } }

        // The sandbox side: read an imported file and write a new one through the gofer.
        let root = try client.mount()   // answered: the gofer has opened the store (and holds its lock)
        let existing = f.paths.first { (try? FileManager.default.attributesOfItem(atPath: f.sourcePath + "/" + $0)[.size] as? Int) ?? 0 > 5000 }!
        let expected = Array(try Data(contentsOf: URL(fileURLWithPath: f.sourcePath + "/" + existing)))
        let readFD = try client.open(try client.walk(root, existing), flags: O_RDONLY)
        XCTAssertEqual(try client.pread(readFD, count: 4096, at: 0), Array(expected.prefix(4096)))
        let live = try client.create(root, "live.bin")
        let first = TreeMaker.bytes(70_000, seed: 77)
        try client.pwrite(live, first, at: 0)
        try client.fsync(live)

        let keyring = try Data(contentsOf: URL(fileURLWithPath: f.storePath + "/keyring"))
        for extra in [[String](), ["--retire"]] {
            let r = try CLI.run(["rotate", "--store", f.storePath, "--key-file", f.keyPath] + extra)
            XCTAssertEqual(r.status, 3, "rotate \(extra) while served: \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("store is in use") && r.stderr.contains("sealgofer serve --store"), r.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: f.storePath + "/keyring")), keyring, "a refused rotate changed the keyring")
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.storePath + "/meta/rotation"))

        // rekey is allowed beside the gofer.
        let newKey = f.scratch.sub("new-key")
        let rk = try CLI.run(["rekey", "--store", f.storePath, "--key-file", f.keyPath, "--new-key-file", newKey])
        XCTAssertEqual(rk.status, 0, rk.stderr)

        // The gofer keeps serving: more writes, reads back through it.
        let second = TreeMaker.bytes(10_000, seed: 78)
        try client.pwrite(live, second, at: 70_000)
        try client.fsync(live)
        XCTAssertEqual(try client.pread(live, count: 80_000, at: 0), first + second)
        XCTAssertEqual(try client.pread(readFD, count: UInt32(expected.count), at: 0), expected)
        try client.close(live)
        try client.close(readFD)

        // The gofer exits (SIGTERM: commits and exits 0); now rotate runs, with the new key only.
        kill(gofer.pid, SIGTERM)
        let status = gofer.wait()
        goferDone = true
        XCTAssertEqual(status, 0, gofer.result(status: status).stderr)
        let old = try CLI.run(["rotate", "--store", f.storePath, "--key-file", f.keyPath])
        XCTAssertEqual(old.status, 2, old.stderr)
        let rot = try CLI.run(["rotate", "--store", f.storePath, "--key-file", newKey, "--json"])
        XCTAssertEqual(rot.status, 0, rot.stderr)
        XCTAssertEqual(rot.json["moved"] as? Int, inodes + 1)
        XCTAssertEqual(try CLI.run(["rotate", "--store", f.storePath, "--key-file", newKey, "--retire"]).status, 0)

        let s = try SealedStore.open(at: f.storePath, key: try KeyMaterial.readKeyFile(path: newKey))
        defer { s.close() }
        let fd = openat(s.dataDirectory, "live.bin", O_RDONLY)
        let file = try s.openFile(descriptor: fd); close(fd)
        XCTAssertEqual(try file.readAll(), first + second)
        XCTAssertEqual(file.epoch, 2)
        file.close()
    }
}
