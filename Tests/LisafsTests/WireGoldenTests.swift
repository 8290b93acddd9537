import Foundation
import XCTest
@testable import Lisafs

/// Byte compatibility with gVisor: the fixture was produced by gVisor's own
/// MarshalBytes (Tests/WireGolden, Debian's gVisor source).
final class WireGoldenTests: XCTestCase {
    struct Golden: Decodable {
        let name: String
        let hex: String
    }

    static func loadGolden() throws -> [String: [UInt8]] {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .appendingPathComponent("Fixtures/wire-golden.json")
        let entries = try JSONDecoder().decode([Golden].self, from: Data(contentsOf: url))
        return Dictionary(uniqueKeysWithValues: entries.map { ($0.name, hexBytes($0.hex)) })
    }

    func testEverySampleHasGoldenBytesAndViceVersa() throws {
        let golden = try Self.loadGolden()
        XCTAssertEqual(Set(golden.keys), Set(WireGoldenSamples.all.map(\.name)))
        XCTAssertEqual(golden.count, 62)
    }

    func testEncodeMatchesGoMarshalBytes() throws {
        let golden = try Self.loadGolden()
        for sample in WireGoldenSamples.all {
            let expected = try XCTUnwrap(golden[sample.name], sample.name)
            XCTAssertEqual(hexString(sample.encode()), hexString(expected), sample.name)
        }
    }

    func testDecodeOfGoBytesEqualsSample() throws {
        let golden = try Self.loadGolden()
        for sample in WireGoldenSamples.all {
            let bytes = try XCTUnwrap(golden[sample.name], sample.name)
            XCTAssertTrue(try sample.decodesToSample(bytes), sample.name)
        }
    }

    func testUpstreamOnlyMessagesMatchHandwrittenLayout() throws {
        for (sample, hex) in WireGoldenSamples.upstreamHandwritten {
            XCTAssertEqual(hexString(sample.encode()), hex, sample.name)
            XCTAssertTrue(try sample.decodesToSample(hexBytes(hex)), sample.name)
        }
    }

    func testAnyRequestDecodesEveryRequestPayloadUnderItsMID() throws {
        let golden = try Self.loadGolden()
        var payloads: [(String, [UInt8])] = golden.map { ($0.key, $0.value) }
        payloads += WireGoldenSamples.upstreamHandwritten.map { ($0.sample.name, hexBytes($0.hex)) }
        var covered = Set<MID>()
        for (name, bytes) in payloads {
            guard let mids = WireGoldenSamples.requestMIDs[name] else { continue }
            for mid in mids {
                let request = try AnyRequest.decode(mid: mid.rawValue, payload: bytes)
                XCTAssertEqual(request.mid, mid, name)
                XCTAssertEqual(request.encoded(), bytes, name)
                covered.insert(mid)
            }
        }
        // Every MID except Error (responses only) is a request we decoded above.
        XCTAssertEqual(covered, Set(MID.allCases).subtracting([.error]))
    }

    func testGoldenFieldSpotChecks() throws {
        // A few decoded fields checked by value, independent of the sample table.
        let golden = try Self.loadGolden()
        let walk = try WalkReq.decode(XCTUnwrap(golden["WalkReq"]))
        XCTAssertEqual(walk.path[2], [0x61, 0x00, 0x62, 0xff], "NUL and invalid UTF-8 survive")
        let mount = try MountResp.decode(XCTUnwrap(golden["MountResp"]))
        XCTAssertEqual(mount.supportedMs.last, 0xfffe, "unknown MIDs are kept raw")
        XCTAssertFalse(mount.supportedMIDs.map(\.rawValue).contains(0xfffe))
        XCTAssertEqual(mount.root.stat.mtime, StatxTimestamp(sec: -5, nsec: 999_999_999))
        let dents = try Getdents64Resp.decode(XCTUnwrap(golden["Getdents64Resp"]))
        XCTAssertEqual(dents.dirents.map(\.nameString), [".", "..", "file\u{0}x"])
        XCTAssertEqual(try XCTUnwrap(golden["Statx"]).count, Statx.encodedSize)
        XCTAssertEqual(try XCTUnwrap(golden["MkdirAtResp"]).count, Inode.encodedSize)
    }
}
