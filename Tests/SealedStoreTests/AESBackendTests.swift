import CSodium
import Foundation
import XCTest
@testable import SealedStore

/// AES-256-GCM runs through OpenSSL's libcrypto when it can (Sources/CAESGCM) and libsodium
/// otherwise: the two must produce and accept exactly the same bytes.
final class AESBackendTests: XCTestCase {
    override func tearDown() { CipherSuite.fastAES = true }

    func testOpenSSLBackendIsInUse() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["SEALGOFER_AES"] == "libsodium", "turned off by SEALGOFER_AES")
        XCTAssertTrue(CipherSuite.fastAES, "the load-time known-answer check of the OpenSSL backend failed")
        CipherSuite.fastAES = false
        XCTAssertFalse(CipherSuite.fastAES)
    }

    /// Random lengths (including 0 and partial blocks) and associated data, sealed by each backend
    /// and opened by the other; a flipped bit anywhere is refused by both.
    func testBackendsAgree() throws {
        try XCTSkipUnless(CipherSuite.aes256gcm.isAvailable)
        let suite = CipherSuite.aes256gcm
        var lengths = [0, 1, 15, 16, 17, 4096, 65536, 65537]
        for _ in 0..<200 { lengths.append(Int(randombytes_uniform(70_000))) }
        for length in lengths {
            let key = random(32), nonce = random(12), ad = random(Int(randombytes_uniform(41))), plain = random(length)
            func seal(fast: Bool) -> [UInt8] {
                CipherSuite.fastAES = fast
                var out = [UInt8](repeating: 0, count: length + 16)
                key.withUnsafeBytes { k in nonce.withUnsafeBytes { n in ad.withUnsafeBytes { a in plain.withUnsafeBytes { p in
                    out.withUnsafeMutableBytes { suite.seal(key: k, nonce: n.baseAddress!, ad: a, plaintext: p, out: $0.baseAddress!) }
                } } } }
                return out
            }
            func open(_ sealed: [UInt8], fast: Bool) -> [UInt8]? {
                CipherSuite.fastAES = fast
                var out = [UInt8](repeating: 0xAA, count: length)
                let ok = key.withUnsafeBytes { k in nonce.withUnsafeBytes { n in ad.withUnsafeBytes { a in sealed.withUnsafeBytes { c in
                    out.withUnsafeMutableBytes { suite.open(key: k, nonce: n.baseAddress!, ad: a, ciphertext: c, out: $0.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 16)) }
                } } } }
                if !ok { XCTAssertTrue(out.allSatisfy { $0 == 0 } || length == 0, "plaintext of a forgery must not be left behind") }
                return ok ? out : nil
            }
            let bySSL = seal(fast: true), bySodium = seal(fast: false)
            XCTAssertEqual(bySSL, bySodium, "length \(length)")
            XCTAssertEqual(open(bySodium, fast: true), plain)
            XCTAssertEqual(open(bySSL, fast: false), plain)
            var forged = bySSL
            forged[Int(randombytes_uniform(UInt32(forged.count)))] ^= 1 << UInt8(randombytes_uniform(8))
            XCTAssertNil(open(forged, fast: true), "length \(length)")
            XCTAssertNil(open(forged, fast: false), "length \(length)")
        }
    }

    /// The independent Python vectors, with libsodium doing the AES (VectorTests runs them on the default backend).
    func testFileVectorsWithLibsodium() throws {
        CipherSuite.fastAES = false
        try VectorTests(name: "testFileVectors", testClosure: { _ in }).testFileVectors()
    }

    private func random(_ n: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: n)
        if n > 0 { randombytes_buf(&b, n) }
        return b
    }
}
