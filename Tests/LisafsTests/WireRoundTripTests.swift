import XCTest
@testable import Lisafs

final class WireRoundTripTests: XCTestCase {
    private func roundTrip<M: WireMessage & Equatable>(_ value: M, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try M.decode(value.encoded()), value, file: file, line: line)
    }

    func testEverySampleRoundTrips() throws {
        for sample in WireGoldenSamples.all + WireGoldenSamples.upstreamHandwritten.map(\.sample) {
            XCTAssertTrue(try sample.decodesToSample(sample.encode()), sample.name)
        }
    }

    func testEdgeValuesRoundTrip() {
        let extreme = Statx(mask: .max, blksize: .max, attributes: .max, nlink: .max, uid: .max, gid: .max,
                            mode: .max, ino: .max, size: .max, blocks: .max, attributesMask: .max,
                            atime: .init(sec: .min, nsec: .max), btime: .init(sec: .max, nsec: 0),
                            ctime: .init(), mtime: .init(sec: -1, nsec: 1),
                            rdevMajor: .max, rdevMinor: .max, devMajor: .max, devMinor: .max)
        roundTrip(extreme)
        roundTrip(Inode(controlFD: .max, stat: extreme))
        roundTrip(WalkReq(dirFD: 1, path: [[UInt8]]()))
        roundTrip(WalkReq(dirFD: 1, path: [[], [0], Array(repeating: 0xff, count: SizedString.maxLength)]))
        roundTrip(WalkResp(status: .success, inodes: []))
        roundTrip(WalkResp(status: .componentDoesNotExist, inodes: Array(repeating: Inode(stat: extreme), count: 50)))
        roundTrip(WalkStatResp(stats: []))
        roundTrip(CloseReq(fds: []))
        roundTrip(PReadResp(buf: []))
        roundTrip(PReadResp(buf: Array(repeating: 0xa5, count: 1 << 20)))
        roundTrip(PWriteReq(offset: .max, fd: .max, buf: []))
        roundTrip(Getdents64Req(dirFD: 1, count: .min))
        roundTrip(ListenReq(fd: 1, backlog: .min))
        roundTrip(Getdents64Resp(dirents: []))
        roundTrip(FListXattrResp(xattrs: []))
        roundTrip(MountResp(root: Inode(), maxMessageSize: 0, supportedMs: []))
        roundTrip(ErrorResp(.ENOENT))
        roundTrip(RenameAt2Req(oldDir: 1, newDir: 2, oldName: [], newName: [0], flags: .max))
        roundTrip(ConnectWithCredsReq(fd: 1, sockType: 5, uid: NoUID, gid: NoGID))
    }

    func testEncodedSizesMatchGoSizeBytes() {
        XCTAssertEqual(Statx().encoded().count, 144)
        XCTAssertEqual(Inode().encoded().count, 152)
        XCTAssertEqual(SetStatReq(fd: 0, mask: 0).encoded().count, 64)
        XCTAssertEqual(StatFS().encoded().count, 64)
        XCTAssertEqual(OpenCreateAtResp(child: Inode(), newFD: 0).encoded().count, 160)
        XCTAssertEqual(MkdirAtReq(dirFD: 0, uid: 0, gid: 0, mode: 0, name: []).encoded().count, 24 + 2)
        XCTAssertEqual(Dirent64(ino: 0, devMinor: 0, devMajor: 0, off: 0, type: 0, name: [1, 2]).encodedSize,
                       Dirent64(ino: 0, devMinor: 0, devMajor: 0, off: 0, type: 0, name: [1, 2]).encoded().count)
        XCTAssertEqual(PReadResp.encodedSize(dataCount: 10), PReadResp(buf: Array(repeating: 0, count: 10)).encoded().count)
    }

    /// Go ignores padding on decode; so do we (a client may send junk there).
    func testPaddingBytesAreIgnoredOnDecode() throws {
        var openAt = OpenAtReq(fd: 3, flags: 0x202).encoded()
        openAt[12...15] = [0xde, 0xad, 0xbe, 0xef]
        XCTAssertEqual(try OpenAtReq.decode(openAt), OpenAtReq(fd: 3, flags: 0x202))

        var mkdir = MkdirAtReq(dirFD: 2, uid: 1, gid: 2, mode: 0o755, name: [0x61]).encoded()
        mkdir[18...23] = [1, 2, 3, 4, 5, 6]
        XCTAssertEqual(try MkdirAtReq.decode(mkdir), MkdirAtReq(dirFD: 2, uid: 1, gid: 2, mode: 0o755, name: [0x61]))

        var stat = Statx(mode: 0o644).encoded()
        stat[30...31] = [0xff, 0xff]
        XCTAssertEqual(try Statx.decode(stat), Statx(mode: 0o644))
    }

    /// Over-long values cannot be represented; the encoder truncates to a
    /// consistent (decodable) payload rather than emitting a corrupt one.
    func testOverlongValuesAreTruncatedConsistently() throws {
        let value = Array(repeating: UInt8(7), count: SizedString.maxLength + 10)
        let decoded = try FGetXattrResp.decode(FGetXattrResp(value: value).encoded())
        XCTAssertEqual(decoded.value.count, SizedString.maxLength)

        let many = CloseReq(fds: Array(repeating: 1, count: Int(UInt16.max) + 3))
        XCTAssertEqual(try CloseReq.decode(many.encoded()).fds.count, Int(UInt16.max))
    }

    func testMountRespSupportedHelper() throws {
        let resp = MountResp(root: Inode(controlFD: 1), maxMessageSize: 4096, supporting: [MID.walk, .mount, .walk, .renameAt2])
        XCTAssertEqual(resp.supportedMs, [1, 5, 33])
        XCTAssertEqual(try MountResp.decode(resp.encoded()).supportedMIDs, [.mount, .walk, .renameAt2])
        XCTAssertEqual(MountResp.recommendedMaxMessageSize, 2 * 1024 * 1024 - 4096)
    }

    func testStringConveniences() {
        XCTAssertEqual(WalkReq(dirFD: 1, path: ["a", "b\u{fc}"]).path, [[0x61], [0x62, 0xc3, 0xbc]])
        XCTAssertEqual(WalkReq(dirFD: 1, path: [[0xff]]).pathStrings, ["\u{fffd}"])
    }
}
