import XCTest
@testable import Lisafs

/// Hostile payloads: every decode must throw (never trap, never allocate from
/// an unchecked peer-supplied length).
final class WireRejectionTests: XCTestCase {
    private var goldenPayloads: [(WireSample, [UInt8])] {
        get throws {
            let golden = try WireGoldenTests.loadGolden()
            var result = try WireGoldenSamples.all.map { ($0, try XCTUnwrap(golden[$0.name])) }
            result += WireGoldenSamples.upstreamHandwritten.map { ($0.sample, hexBytes($0.hex)) }
            return result
        }
    }

    func testEveryStrictPrefixIsRejected() throws {
        // All lisafs encodings are self-delimiting, so no strict prefix of a valid
        // payload is itself a whole valid payload, fixed-size or not.
        var checked = 0
        for (sample, bytes) in try goldenPayloads {
            for length in 0..<bytes.count {
                XCTAssertThrowsError(try sample.decodesToSample(Array(bytes[..<length])),
                                     "\(sample.name) prefix \(length)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 2000)
    }

    func testStrictPrefixesOfRequestsAreRejectedByAnyRequest() throws {
        for (sample, bytes) in try goldenPayloads {
            guard let mids = WireGoldenSamples.requestMIDs[sample.name] else { continue }
            for mid in mids {
                for length in 0..<bytes.count {
                    XCTAssertThrowsError(try AnyRequest.decode(mid: mid.rawValue, payload: Array(bytes[..<length])))
                }
            }
        }
    }

    func testTrailingGarbageIsRejected() throws {
        for (sample, bytes) in try goldenPayloads {
            for garbage in [[0x00], [0xff, 0xff, 0xff]] as [[UInt8]] {
                XCTAssertThrowsError(try sample.decodesToSample(bytes + garbage), sample.name) { error in
                    XCTAssertEqual(error as? WireError, .trailingBytes(garbage.count), sample.name)
                }
                if let mid = WireGoldenSamples.requestMIDs[sample.name]?.first {
                    XCTAssertThrowsError(try AnyRequest.decode(mid: mid, payload: bytes + garbage))
                }
            }
        }
    }

    func testUnknownAndResponseOnlyMIDsAreRejected() {
        for raw: UInt16 in [0, 34, 100, .max] {
            XCTAssertThrowsError(try AnyRequest.decode(mid: raw, payload: [])) { error in
                XCTAssertEqual(error as? UnknownMIDError, UnknownMIDError(mid: raw))
            }
        }
    }

    // MARK: Oversized counts and lengths

    private func assertTooLarge<M: WireMessage>(_ type: M.Type, _ payload: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try M.decode(payload), file: file, line: line) { error in
            guard case .lengthTooLarge = error as? WireError else {
                return XCTFail("expected lengthTooLarge, got \(error)", file: file, line: line)
            }
        }
    }

    private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    func testMaximalArrayCountsAreRejectedBeforeAllocating() {
        let maxCount = le(UInt16.max)
        assertTooLarge(WalkReq.self, le(FDID(2)) + maxCount + [0, 0])
        assertTooLarge(CloseReq.self, maxCount + le(FDID(1)))
        assertTooLarge(FsyncReq.self, maxCount)
        assertTooLarge(WalkResp.self, [0] + maxCount + Array(repeating: 0, count: Inode.encodedSize))
        assertTooLarge(WalkStatResp.self, maxCount + Array(repeating: 0, count: Statx.encodedSize))
        assertTooLarge(Getdents64Resp.self, maxCount + Array(repeating: 0, count: Dirent64.fixedSize))
        assertTooLarge(FListXattrResp.self, maxCount + [0, 0])
        assertTooLarge(MountResp.self, Inode().encoded() + le(UInt32(1 << 20)) + maxCount + [1, 0])
    }

    func testHugeDataLengthsAreRejected() {
        // PWriteReq: numBytes = 2^32-1 with only a few data bytes present.
        assertTooLarge(PWriteReq.self, le(UInt64(0)) + le(FDID(9)) + le(UInt32.max) + [1, 2, 3])
        // PReadResp: a 64-bit length; 2^32+3 must not be truncated to 3 as Go does.
        assertTooLarge(PReadResp.self, le(UInt64.max) + [1, 2, 3])
        assertTooLarge(PReadResp.self, le(UInt64(1) << 32 | 3) + [1, 2, 3])
    }

    func testStringLengthsPastTheEndAreRejected() {
        let longName = le(UInt16(0xffff)) + Array("abc".utf8)
        let cases: [(String, () throws -> Void)] = [
            ("UnlinkAtReq", { _ = try UnlinkAtReq.decode(self.le(FDID(2)) + self.le(UInt32(0)) + longName) }),
            ("RenameAtReq old", { _ = try RenameAtReq.decode(self.le(FDID(2)) + self.le(FDID(3)) + longName) }),
            ("RenameAtReq new", { _ = try RenameAtReq.decode(self.le(FDID(2)) + self.le(FDID(3)) + [1, 0, 0x61] + longName) }),
            ("SymlinkAtReq target", { _ = try SymlinkAtReq.decode(self.le(FDID(2)) + self.le(UInt64(0)) + [0, 0] + longName) }),
            ("FSetXattrReq value", { _ = try FSetXattrReq.decode(self.le(FDID(2)) + self.le(UInt32(0)) + [0, 0] + longName) }),
            ("MkdirAtReq", { _ = try MkdirAtReq.decode(Array(repeating: 0, count: 24) + longName) }),
            ("WalkReq element", { _ = try WalkReq.decode(self.le(FDID(2)) + [2, 0] + [1, 0, 0x61] + longName) }),
            ("Getdents64Resp name", { _ = try Getdents64Resp.decode([1, 0] + Array(repeating: 0, count: 25) + longName) }),
            ("FGetXattrResp", { _ = try FGetXattrResp.decode(longName) }),
            ("AcceptResp", { _ = try AcceptResp.decode([4, 0]) }),
        ]
        for (name, decode) in cases {
            XCTAssertThrowsError(try decode(), name) { error in
                guard case .truncated = error as? WireError else { return XCTFail("\(name): \(error)") }
            }
        }
    }

    func testUnknownWalkStatusIsRejected() {
        XCTAssertThrowsError(try WalkResp.decode([3, 0, 0])) { error in
            guard case .invalidValue = error as? WireError else { return XCTFail("\(error)") }
        }
    }

    // MARK: Fuzzing

    /// Deterministic xorshift so failures reproduce.
    private struct XorShift: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
    }

    func testMutatedGoldenPayloadsNeverTrapAndReencodeStably() throws {
        var rng = XorShift(state: 0x9e37_79b9_7f4a_7c15)
        var accepted = 0, rejected = 0
        for (sample, bytes) in try goldenPayloads where !bytes.isEmpty {
            for _ in 0..<300 {
                var mutated = bytes
                for _ in 0...Int.random(in: 0..<3, using: &rng) {
                    mutated[Int.random(in: 0..<mutated.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) { mutated.removeLast(Int.random(in: 0...min(4, mutated.count), using: &rng)) }
                do {
                    let stable = try sample.reencodeIsStable(mutated)
                    XCTAssertTrue(stable, sample.name)
                    accepted += 1
                } catch is WireError {
                    rejected += 1
                }
                if let mid = WireGoldenSamples.requestMIDs[sample.name]?.first {
                    _ = try? AnyRequest.decode(mid: mid, payload: mutated)
                }
            }
        }
        XCTAssertGreaterThan(accepted, 0)
        XCTAssertGreaterThan(rejected, 0)
    }

    func testRandomPayloadsForEveryMIDNeverTrap() {
        var rng = XorShift(state: 42)
        for mid in MID.allCases {
            for _ in 0..<500 {
                let length = Int.random(in: 0..<200, using: &rng)
                let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if let request = try? AnyRequest.decode(mid: mid, payload: payload) {
                    // Whatever was accepted must survive a round trip.
                    XCTAssertEqual(try AnyRequest.decode(mid: mid, payload: request.encoded()), request)
                }
            }
        }
    }
}
