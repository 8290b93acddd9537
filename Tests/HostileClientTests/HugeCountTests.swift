import Foundation
import Lisafs
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Peer-supplied sizes: PRead count 2^32-1, Getdents64 huge counts, xattr
/// buffer sizes, PWrite lengths that lie, SetStat with garbage masks.
/// Each must be refused or clamped without a big allocation.
final class HugeCountTests: HostileTestCase {
    /// Peak RSS must stay far below what honouring a 4 GiB count would take.
    private func assertSmallPeakMemory(_ context: String, file: StaticString = #filePath, line: UInt = #line) {
        let hwm = gofer?.statusField("VmHWM") ?? 0
        print("[mem] \(name) \(context): VmHWM \(hwm) kB")
        XCTAssertLessThan(hwm, 256 * 1024, "\(context): gofer peak RSS \(hwm) kB", file: file, line: line)
    }

    private func openFile(_ root: FDID, _ name: String, flags: Int32) throws -> (control: FDID, open: FDID) {
        let control = try walkOne(root, name).controlFD
        let open = try XCTUnwrap(decode(openAt(control, flags: flags), OpenAtResp.self, .openAt)).openFD
        return (control, open)
    }

    func testPReadHugeCounts() throws {
        let root = try startAndMount()
        let (_, open) = try openFile(root, "file", flags: O_RDONLY)
        for count: UInt32 in [.max, .max - 7, 1 << 31, 1 << 24] {
            let reply = client.call(.pRead, PReadReq(offset: 0, fd: open, count: count))
            if reply.errno == nil {
                let resp = decode(reply, PReadResp.self, .pRead)
                XCTAssertEqual(resp.map { String(decoding: $0.buf, as: UTF8.self) }, Sandbox.servedFileContents,
                               "PRead count \(count) clamped to the wrong data")
            }
        }
        for offset: UInt64 in [.max, 1 << 63, (1 << 63) - 1] {
            let reply = client.call(.pRead, PReadReq(offset: offset, fd: open, count: 100))
            if reply.errno == nil {
                XCTAssertEqual(decode(reply, PReadResp.self, .pRead)?.buf.count, 0, "PRead at offset \(offset)")
            }
        }
        assertSmallPeakMemory("PRead 4 GiB")
        assertStillServing()
    }

    func testGetdents64HugeAndOddCounts() throws {
        let root = try startAndMount()
        let rootOpen = try XCTUnwrap(decode(openAt(root, flags: O_RDONLY), OpenAtResp.self, .openAt)).openFD
        let expected: Set<String> = [".", "..", "file", "dir", "to-root", "to-sentinel", "to-secret", "dangling-in-sentinel", "dangling-abs"]
        for count: Int32 in [.max, .min, -1, 0, 1, 26, Int32.max - 1, -Int32.max] {
            let reply = client.call(.getdents64, Getdents64Req(dirFD: rootOpen, count: count))
            if reply.errno != nil { continue }
            guard let resp = decode(reply, Getdents64Resp.self, .getdents64) else { continue }
            let names = Set(resp.dirents.map(\.nameString))
            XCTAssertTrue(names.isSubset(of: expected), "Getdents64 count \(count) listed \(names.subtracting(expected))")
        }
        // A full listing from the start: exactly the served directory.
        let all = decode(client.call(.getdents64, Getdents64Req(dirFD: rootOpen, count: -Int32.max)), Getdents64Resp.self, .getdents64)
        XCTAssertEqual(all.map { Set($0.dirents.map(\.nameString)) }, expected)
        assertSmallPeakMemory("Getdents64 2 GiB")
    }

    func testXattrHugeSizes() throws {
        let root = try startAndMount()
        let file = try walkOne(root, "file").controlFD
        let set = client.call(.fSetXattr, FSetXattrReq(fd: file, flags: 0, name: [UInt8]("user.test"), value: [UInt8]("value")))
        XCTAssertTrue(set.errno != nil || set.mid == MID.fSetXattr.rawValue, "FSetXattr: \(set)")
        for size: UInt32 in [.max, 1 << 31, 1 << 16, 0, 1] {
            let reply = client.call(.fGetXattr, FGetXattrReq(fd: file, bufSize: size, name: [UInt8]("user.test")))
            if set.errno == nil && size >= 5 && reply.errno == nil {
                XCTAssertEqual(decode(reply, FGetXattrResp.self, .fGetXattr).map { String(decoding: $0.value, as: UTF8.self) }, "value")
            } else {
                XCTAssertTrue(reply.errno != nil || reply.mid == MID.fGetXattr.rawValue, "FGetXattr size \(size): \(reply)")
            }
        }
        for size: UInt64 in [.max, 1 << 32, 0, 1] {
            let reply = client.call(.fListXattr, FListXattrReq(fd: file, size: size))
            XCTAssertTrue(reply.errno != nil || reply.mid == MID.fListXattr.rawValue, "FListXattr size \(size): \(reply)")
        }
        // Names and values at the SizedString limit.
        let longName = [UInt8]("user.") + [UInt8](repeating: 0x61, count: 65_530)
        assertError(client.call(.fGetXattr, FGetXattrReq(fd: file, bufSize: .max, name: longName)), [ERANGE, ENAMETOOLONG, EINVAL],
                    "FGetXattr 64 KiB name")
        assertError(client.call(.fSetXattr, FSetXattrReq(fd: file, flags: 0, name: longName, value: [1])), [ERANGE, ENAMETOOLONG, EINVAL],
                    "FSetXattr 64 KiB name")
        let bigValue = client.call(.fSetXattr, FSetXattrReq(fd: file, flags: 0, name: [UInt8]("user.big"),
                                                            value: [UInt8](repeating: 0x62, count: 65_535)))
        XCTAssertTrue(bigValue.errno != nil || bigValue.mid == MID.fSetXattr.rawValue, "FSetXattr 64 KiB value: \(bigValue)")
        assertError(client.call(.fSetXattr, FSetXattrReq(fd: file, flags: 0xFFFF_FFFF, name: [UInt8]("user.x"), value: [1])),
                    [], "FSetXattr garbage flags")
        assertError(client.call(.fGetXattr, FGetXattrReq(fd: file, bufSize: 100, name: [])), [], "FGetXattr empty name")
        assertSmallPeakMemory("xattr 4 GiB sizes")
        assertStillServing()
    }

    func testPWriteLengthMismatches() throws {
        let root = try startAndMount()
        let (_, open) = try openFile(root, "file", flags: O_RDWR)
        func pwrite(declared: UInt32, actual: Int, offset: UInt64 = 0) -> Reply {
            var w = WireWriter()
            w.u64(offset)
            w.u64(open)
            w.u32(declared)
            w.raw([UInt8](repeating: 0x58, count: actual))
            return client.call(mid: MID.pWrite.rawValue, payload: w.bytes)
        }
        assertError(pwrite(declared: 100, actual: 10), [EIO, EINVAL], "PWrite declaring 100, carrying 10")
        assertError(pwrite(declared: .max, actual: 10), [EIO, EINVAL], "PWrite declaring 2^32-1, carrying 10")
        assertError(pwrite(declared: 1 << 31, actual: 0), [EIO, EINVAL], "PWrite declaring 2 GiB, carrying 0")
        let shorter = pwrite(declared: 2, actual: 10)
        if shorter.errno == nil {
            XCTAssertLessThanOrEqual(decode(shorter, PWriteResp.self, .pWrite)?.count ?? 99, 2, "wrote more than declared")
        }
        XCTAssertTrue(sandbox.readServed("file")?.hasSuffix("served\n") == true, "file damaged: \(sandbox.readServed("file") ?? "nil")")
        for offset: UInt64 in [.max, 1 << 63, UInt64(Int64.max)] {
            assertError(pwrite(declared: 4, actual: 4, offset: offset), [EINVAL, EFBIG], "PWrite at offset \(offset)")
        }
        // Zero-length write is harmless.
        let empty = pwrite(declared: 0, actual: 0)
        XCTAssertTrue(empty.errno != nil || empty.mid == MID.pWrite.rawValue, "\(empty)")
        // Writing through a read-only open FD.
        let (_, readOnly) = try openFile(root, "file", flags: O_RDONLY)
        assertError(client.call(.pWrite, PWriteReq(offset: 0, fd: readOnly, buf: [UInt8]("pwned"))), [EBADF], "PWrite on O_RDONLY FD")
        let (_, writeOnly) = try openFile(root, "file", flags: O_WRONLY)
        assertError(client.call(.pRead, PReadReq(offset: 0, fd: writeOnly, count: 10)), [EBADF], "PRead on O_WRONLY FD")
        assertSmallPeakMemory("PWrite lies")
    }

    func testSetStatGarbage() throws {
        let root = try startAndMount()
        let file = try walkOne(root, "file").controlFD
        let dir = try walkOne(root, "dir").controlFD
        func setStat(_ fd: FDID, mask: UInt32, mode: UInt32 = 0, size: UInt64 = 0,
                     atime: Timespec = .init(), mtime: Timespec = .init()) -> Reply {
            client.call(.setStat, SetStatReq(fd: fd, mask: mask, mode: mode, uid: NoUID, gid: NoGID, size: size,
                                             atime: atime, mtime: mtime))
        }
        for mask: UInt32 in [.max, 0x8000_0000, StatxMask.ino, StatxMask.nlink, StatxMask.type, StatxMask.btime, 0x1000] {
            let reply = setStat(file, mask: mask, mode: 0o4777, size: 0)
            if reply.errno == nil {
                let resp = decode(reply, SetStatResp.self, .setStat)
                XCTAssertNotEqual(resp?.failureMask, 0, "SetStat mask 0x\(String(mask, radix: 16)) fully succeeded")
            }
        }
        XCTAssertEqual(sandbox.readServed("file"), Sandbox.servedFileContents, "garbage mask truncated the file")
        let none = setStat(file, mask: 0)
        XCTAssertEqual(none.mid, MID.setStat.rawValue, "SetStat with mask 0: \(none)")

        let hugeSize = decode(setStat(file, mask: StatxMask.size, size: .max), SetStatResp.self, .setStat)
        XCTAssertEqual(hugeSize.map { $0.failureMask & StatxMask.size }, StatxMask.size, "truncate to 2^64-1 did not fail")
        let dirSize = decode(setStat(dir, mask: StatxMask.size, size: 0), SetStatResp.self, .setStat)
        XCTAssertEqual(dirSize.map { $0.failureMask & StatxMask.size }, StatxMask.size, "truncate of a directory did not fail")
        let badTimes = decode(setStat(file, mask: StatxMask.atime | StatxMask.mtime,
                                      atime: Timespec(sec: .min, nsec: .max), mtime: Timespec(sec: .max, nsec: -5)),
                              SetStatResp.self, .setStat)
        XCTAssertNotEqual(badTimes?.failureMask ?? 0, 0, "nonsense timestamps accepted")
        // Mode bits beyond 07777 must not change the file type.
        let mode = setStat(file, mask: StatxMask.mode, mode: 0xFFFF_FFFF)
        XCTAssertTrue(mode.errno != nil || mode.mid == MID.setStat.rawValue)
        XCTAssertEqual(sandbox.lstatServed("file").map { $0.st_mode & S_IFMT }, S_IFREG)
        let fallocate = client.call(.fAllocate, FAllocateReq(fd: file, mode: .max, offset: .max, length: .max))
        assertError(fallocate, [EINVAL], "FAllocate on a control FD with garbage")
        let (_, open) = try openFile(root, "file", flags: O_RDWR)
        for (m, o, l) in [(UInt64.max, UInt64(0), UInt64(10)), (0, .max, 10), (0, 0, .max), (0x7F, 0, 10)] {
            let reply = client.call(.fAllocate, FAllocateReq(fd: open, mode: m, offset: o, length: l))
            assertError(reply, [], "FAllocate mode \(m) offset \(o) length \(l)")
        }
        assertStillServing()
    }
}
