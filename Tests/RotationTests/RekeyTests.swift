import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SealedStore

final class RekeyTests: XCTestCase {
    private func opens(_ f: StoreFixture, _ key: KeyMaterial) -> Bool {
        guard let s = try? SealedStore.open(at: f.storePath, key: key) else { return false }
        s.close()
        return true
    }

    /// Key file → new key file (created 0600) → passphrase → key file: after each, only the newest
    /// key opens the store; master keys and file contents are unchanged.
    func testRekeyChainKeyFilePassphraseKeyFile() throws {
        let f = try StoreFixture.make("rekey", files: 30, seed: 4)
        _ = try f.rotate()   // two epochs: both must be rewrapped
        let (keys, _) = try f.capture()
        XCTAssertEqual(keys.count, 2)
        let k2 = f.scratch.sub("k2"), pass = f.scratch.sub("pass"), k3 = f.scratch.sub("k3")
        try "correct horse\n".write(toFile: pass, atomically: true, encoding: .utf8)

        let r1 = try CLI.run(["rekey", "--store", f.storePath, "--key-file", f.keyPath, "--new-key-file", k2, "--json"])
        XCTAssertEqual(r1.status, 0, r1.stderr)
        XCTAssertEqual(r1.json["createdKeyFile"] as? Bool, true)
        XCTAssertEqual(r1.json["epochs"] as? Int, 2)
        var st = stat()
        XCTAssertEqual(stat(k2, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        XCTAssertEqual(st.st_size, 32)
        XCTAssertFalse(opens(f, f.key))
        XCTAssertTrue(opens(f, try KeyMaterial.readKeyFile(path: k2)))

        let r2 = try CLI.run(["rekey", "--store", f.storePath, "--key-file", k2, "--new-passphrase-file", pass, "--kdf-cost", "minimal"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertFalse(opens(f, try KeyMaterial.readKeyFile(path: k2)))
        let passphrase = try KeyMaterial.readPassphraseFile(path: pass)
        XCTAssertTrue(opens(f, passphrase))
        XCTAssertEqual(try f.info()["kdf"] as? String, "argon2id")

        let r3 = try CLI.run(["rekey", "--store", f.storePath, "--passphrase-file", pass, "--new-key-file", k3])
        XCTAssertEqual(r3.status, 0, r3.stderr)
        XCTAssertFalse(opens(f, passphrase))
        let final = try KeyMaterial.readKeyFile(path: k3)
        let s = try SealedStore.open(at: f.storePath, key: final)
        for (e, k) in keys { XCTAssertTrue(s.keyring.masterKey(epoch: e)!.equals(k), "epoch \(e) master key changed") }
        s.close()
        XCTAssertEqual(try CLI.run(["verify", "--store", f.storePath, "--key-file", k3]).status, 0)
        let old = try CLI.run(["verify", "--store", f.storePath, "--key-file", f.keyPath])
        XCTAssertEqual(old.status, 2)
        XCTAssertEqual(old.stderr, "sealgofer: wrong key or passphrase\n")
    }

    /// A crash just before the keyring replacement (keyring.tmp written, not renamed) leaves the
    /// old key working and the new one not; a rerun completes.
    func testCrashBeforeReplaceKeepsOldKey() throws {
        let f = try StoreFixture.make("rekeycrash", files: 3, seed: 6)
        let newKey = KeyMaterial.keyFile(SecretBytes.random(count: 32))
        RotationTestHooks.crashAt = .rekeyBeforeReplace
        defer { RotationTestHooks.crashAt = nil }
        XCTAssertThrowsError(try StoreRekey.run(path: f.storePath, current: f.key, new: { newKey }))
        RotationTestHooks.crashAt = nil
        XCTAssertTrue(opens(f, f.key))
        XCTAssertFalse(opens(f, newKey))
        _ = try StoreRekey.run(path: f.storePath, current: f.key, new: { newKey })
        XCTAssertFalse(opens(f, f.key))
        XCTAssertTrue(opens(f, newKey))
    }

    /// SIGKILL `rekey` at random instants, alternating A→B and B→A: after every kill exactly one
    /// of the two keys opens the store, and the files are intact.
    func testSIGKILLLeavesExactlyOneKeyWorking() throws {
        let kills = longMode ? 300 : 60
        let f = try StoreFixture.make("rekeykill", files: 10, seed: 8)
        let a = f.keyPath, b = f.scratch.sub("b")
        _ = try KeyMaterial.createKeyFile(path: b)
        let keyA = try KeyMaterial.readKeyFile(path: a), keyB = try KeyMaterial.readKeyFile(path: b)
        // How long one rekey process lives, to spread the kills over it.
        let t0 = Date()
        XCTAssertEqual(try CLI.run(["rekey", "--store", f.storePath, "--key-file", a, "--new-key-file", b]).status, 0)
        let lifetime = max(0.005, Date().timeIntervalSince(t0))
        var current = (b, keyB), other = (a, keyA)
        var switched = 0
        var rng = SystemRandomNumberGenerator()
        for i in 0..<kills {
            let child = try CLI.spawn(["rekey", "--store", f.storePath, "--key-file", current.0, "--new-key-file", other.0])
            usleep(UInt32(Double.random(in: 0...(lifetime * 1.2), using: &rng) * 1e6))
            kill(child.pid, SIGKILL)
            _ = child.result(status: child.wait())
            let openA = opens(f, keyA), openB = opens(f, keyB)
            XCTAssertNotEqual(openA, openB, "kill \(i): A opens \(openA), B opens \(openB)")
            let nowWorking = openA ? (a, keyA) : (b, keyB)
            if nowWorking.0 != current.0 { switched += 1; (current, other) = (other, current) }
        }
        try f.assertContentsIntact(key: current.1)
        print("rekey kills: \(kills), switched keys: \(switched)")
        XCTAssertGreaterThan(switched, 0, "no rekey ever completed before its kill")
        XCTAssertLessThan(switched, kills, "no kill ever landed before the rename")
    }

    /// Two keyring writers exclude each other: while the keyring lock is held, rekey refuses with
    /// exit 3 after its short wait (and rotate too).
    func testKeyringLockExcludesConcurrentWriters() throws {
        let f = try StoreFixture.make("klock", files: 2, seed: 9)
        let lock = try KeyringLock.acquire(storePath: f.storePath)
        let r = try CLI.run(["rekey", "--store", f.storePath, "--key-file", f.keyPath, "--new-key-file", f.scratch.sub("n")])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("keyring lock") || r.stderr.contains("keyring.lock"), r.stderr)
        let rot = try CLI.run(["rotate", "--store", f.storePath, "--key-file", f.keyPath])
        XCTAssertEqual(rot.status, 3, rot.stderr)
        lock.release()
        XCTAssertEqual(try CLI.run(["rekey", "--store", f.storePath, "--key-file", f.keyPath, "--new-key-file", f.scratch.sub("n")]).status, 0)
    }

    /// "Well under a second whatever the store size": rekey time does not grow with the files.
    func testRekeyTimeIndependentOfStoreSize() throws {
        let f = try StoreFixture.make("rekeytime", files: longMode ? 10_000 : 2_000, seed: 12, maxLarge: 64 << 10)
        let r = try CLI.run(["rekey", "--store", f.storePath, "--key-file", f.keyPath, "--new-key-file", f.scratch.sub("n"), "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let seconds = r.json["seconds"] as? Double ?? 99
        XCTAssertLessThan(seconds, 0.25, "rekey took \(seconds) s")
    }
}
