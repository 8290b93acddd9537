import Lisafs

/// One sample message: how to encode it and how to check a decode against it,
/// with the concrete type erased so samples of every type fit one table.
struct WireSample {
    let name: String
    let encode: () -> [UInt8]
    /// Decodes a whole payload as this sample's type; true if it equals the sample.
    let decodesToSample: ([UInt8]) throws -> Bool
    /// Decodes a whole payload as this sample's type, re-encodes, decodes again;
    /// true if both decodes agree (used by fuzzing).
    let reencodeIsStable: ([UInt8]) throws -> Bool

    init<M: WireMessage & Equatable>(_ name: String, _ value: M) {
        self.name = name
        encode = { value.encoded() }
        decodesToSample = { try M.decode($0) == value }
        reencodeIsStable = { bytes in
            let first = try M.decode(bytes)
            return try M.decode(first.encoded()) == first
        }
    }
}

/// Swift mirror of the values in Tests/WireGolden/main.go (Debian gVisor, MIDs 0-31).
/// Keep the two in step: the golden test fails on any mismatch.
enum WireGoldenSamples {
    static func b(_ s: String) -> [UInt8] { Array(s.utf8) }

    static func statx(_ k: UInt64) -> Statx {
        Statx(
            mask: 0x7ff, blksize: 4096, attributes: 0x20, nlink: 3, uid: 1000, gid: 1001,
            mode: 0o100644, ino: 0x1122_3344_5566_7700 + k, size: 1000 * k + 7, blocks: 241,
            attributesMask: 0x30,
            atime: StatxTimestamp(sec: 1_700_000_000, nsec: 111),
            btime: StatxTimestamp(sec: 1_600_000_000, nsec: 222),
            ctime: StatxTimestamp(sec: 1_700_000_001, nsec: 333),
            mtime: StatxTimestamp(sec: -5, nsec: 999_999_999),
            rdevMajor: 8, rdevMinor: 1, devMajor: 253, devMinor: 7)
    }

    static func inode(_ fd: FDID, _ k: UInt64) -> Inode { Inode(controlFD: fd, stat: statx(k)) }

    static let walkReq = WalkReq(dirFD: 2, path: [b("usr"), b("lib"), [0x61, 0x00, 0x62, 0xff]])

    /// Every Debian-gVisor sample, by Go type name.
    static let all: [WireSample] = [
        WireSample("MountReq", MountReq()),
        WireSample("MountResp", MountResp(root: inode(1, 1), maxMessageSize: 2_093_056,
                                          supportedMs: [1, 2, 3, 4, 5, 6, 7, 9, 12, 31, 0xfffe])),
        WireSample("ChannelReq", ChannelReq()),
        WireSample("ChannelResp", ChannelResp(dataOffset: 4096, dataLength: 2_093_056)),
        WireSample("ErrorResp", ErrorResp(errno: 2)),
        WireSample("StatReq", StatReq(fd: 0x0102_0304_0506_0708)),
        WireSample("Statx", statx(9)),
        WireSample("SetStatReq", SetStatReq(fd: 7, mask: 0x1 | 0x8 | 0x10 | 0x20 | 0x200, mode: 0o644,
                                            uid: 1000, gid: NoGID, size: 4096,
                                            atime: Timespec(sec: 1, nsec: 2),
                                            mtime: Timespec(sec: -3, nsec: 999_999_999))),
        WireSample("SetStatResp", SetStatResp(failureMask: 0x4, failureErrNo: 1)),
        WireSample("WalkReq", walkReq),
        WireSample("WalkResp", WalkResp(status: .componentSymlink, inodes: [inode(10, 2), inode(11, 3)])),
        WireSample("WalkStatResp", WalkStatResp(stats: [statx(4), statx(5), statx(6)])),
        WireSample("OpenAtReq", OpenAtReq(fd: 3, flags: 0x202)),
        WireSample("OpenAtResp", OpenAtResp(openFD: 12)),
        WireSample("OpenCreateAtReq", OpenCreateAtReq(dirFD: 2, uid: 1000, gid: 1000, mode: 0o100600,
                                                      flags: 0x42, name: b("new file.txt"))),
        WireSample("OpenCreateAtResp", OpenCreateAtResp(child: inode(13, 7), newFD: 14)),
        WireSample("CloseReq", CloseReq(fds: [5, 6, .max])),
        WireSample("CloseResp", CloseResp()),
        WireSample("FsyncReq", FsyncReq(fds: [9])),
        WireSample("FsyncResp", FsyncResp()),
        WireSample("PReadReq", PReadReq(offset: 1 << 40, fd: 9, count: 65536)),
        WireSample("PReadResp", PReadResp(buf: [0x68, 0x65, 0x6c, 0x6c, 0x6f, 0, 0xff, 0x20, 0x77, 0x6f, 0x72])),
        WireSample("PWriteReq", PWriteReq(offset: 4096, fd: 9, buf: [0, 1, 2, 0xfe, 0xff, 0x78])),
        WireSample("PWriteResp", PWriteResp(count: 6)),
        WireSample("MkdirAtReq", MkdirAtReq(dirFD: 2, uid: 0, gid: 0, mode: 0o40755, name: b("dir"))),
        WireSample("MkdirAtResp", MkdirAtResp(childDir: inode(15, 8))),
        WireSample("MknodAtReq", MknodAtReq(dirFD: 2, uid: 1, gid: 2, mode: 0o20666, minor: 3, major: 1, name: b("null"))),
        WireSample("MknodAtResp", MknodAtResp(child: inode(16, 9))),
        WireSample("SymlinkAtReq", SymlinkAtReq(dirFD: 2, uid: 1000, gid: 1000, name: b("link"), target: b("../target/\u{fc}"))),
        WireSample("SymlinkAtResp", SymlinkAtResp(symlink: inode(17, 10))),
        WireSample("LinkAtReq", LinkAtReq(dirFD: 2, target: 13, name: b("hard"))),
        WireSample("LinkAtResp", LinkAtResp(link: inode(13, 7))),
        WireSample("FStatFSReq", FStatFSReq(fd: 2)),
        WireSample("StatFS", StatFS(type: 0x5846_5342, blockSize: 4096, blocks: 1_000_000, blocksFree: 500_000,
                                    blocksAvailable: 400_000, files: 65536, filesFree: 60000, nameLength: 255)),
        WireSample("FAllocateReq", FAllocateReq(fd: 9, mode: 1, offset: 100, length: 200)),
        WireSample("FAllocateResp", FAllocateResp()),
        WireSample("ReadLinkAtReq", ReadLinkAtReq(fd: 17)),
        WireSample("ReadLinkAtResp", ReadLinkAtResp(target: b("../target/\u{fc}"))),
        WireSample("FlushReq", FlushReq(fd: 9)),
        WireSample("FlushResp", FlushResp()),
        WireSample("ConnectReq", ConnectReq(fd: 20, sockType: 1)),
        WireSample("ConnectResp", ConnectResp()),
        WireSample("UnlinkAtReq", UnlinkAtReq(dirFD: 2, flags: 0x200, name: b("dir"))),
        WireSample("UnlinkAtResp", UnlinkAtResp()),
        WireSample("RenameAtReq", RenameAtReq(oldDir: 2, newDir: 3, oldName: b("old"), newName: b("new") + [0xff])),
        WireSample("RenameAtResp", RenameAtResp()),
        WireSample("Getdents64Req", Getdents64Req(dirFD: 2, count: -4096)),
        WireSample("Getdents64Resp", Getdents64Resp(dirents: [
            Dirent64(ino: 1, devMinor: 7, devMajor: 253, off: 1, type: 4, name: b(".")),
            Dirent64(ino: 2, devMinor: 7, devMajor: 253, off: 2, type: 4, name: b("..")),
            Dirent64(ino: 99, devMinor: 7, devMajor: 253, off: 0x7fff_ffff_ffff_ffff, type: 8,
                     name: b("file") + [0] + b("x")),
        ])),
        WireSample("FGetXattrReq", FGetXattrReq(fd: 9, bufSize: 256, name: b("user.key"))),
        WireSample("FGetXattrResp", FGetXattrResp(value: [0, 1] + b("value"))),
        WireSample("FSetXattrReq", FSetXattrReq(fd: 9, flags: 1, name: b("user.key"), value: [0x76, 0, 0xff])),
        WireSample("FSetXattrResp", FSetXattrResp()),
        WireSample("FListXattrReq", FListXattrReq(fd: 9, size: 1024)),
        WireSample("FListXattrResp", FListXattrResp(xattrs: [b("user.a"), b("security.selinux"), []])),
        WireSample("FRemoveXattrReq", FRemoveXattrReq(fd: 9, name: b("user.a"))),
        WireSample("FRemoveXattrResp", FRemoveXattrResp()),
        WireSample("BindAtReq", BindAtReq(dirFD: 2, uid: 1000, gid: 1000, mode: 0o140755, sockType: 1, name: b("sock"))),
        WireSample("BindAtResp", BindAtResp(child: inode(18, 11), boundSocketFD: 19)),
        WireSample("ListenReq", ListenReq(fd: 19, backlog: -1)),
        WireSample("ListenResp", ListenResp()),
        WireSample("AcceptReq", AcceptReq(fd: 19)),
        WireSample("AcceptResp", AcceptResp(peerAddr: b("@abstract"))),
    ]

    /// Upstream-only MIDs 32/33. Debian's gVisor lacks these types, so these bytes
    /// are written BY HAND from upstream pkg/lisafs/message.go (google/gvisor
    /// 3c5eee17): ConnectWithCredsReq = ConnectReq{FD u64, SockType u32, pad u32}
    /// + UID u32 + GID u32; RenameAt2Req = RenameAtReq + Flags u32 (unaligned).
    static let upstreamHandwritten: [(sample: WireSample, hex: String)] = [
        (WireSample("ConnectWithCredsReq", ConnectWithCredsReq(fd: 20, sockType: 2, uid: 1000, gid: 1001)),
         "1400000000000000" + "02000000" + "00000000" + "e8030000" + "e9030000"),
        (WireSample("RenameAt2Req", RenameAt2Req(oldDir: 2, newDir: 3, oldName: b("old"), newName: b("new") + [0xff], flags: 1)),
         "0200000000000000" + "0300000000000000" + "0300" + "6f6c64" + "0400" + "6e6577ff" + "01000000"),
    ]

    /// Request samples by the MID they travel under (Walk and WalkStat share WalkReq).
    static let requestMIDs: [String: [MID]] = [
        "MountReq": [.mount], "ChannelReq": [.channel], "StatReq": [.fStat], "SetStatReq": [.setStat],
        "WalkReq": [.walk, .walkStat], "OpenAtReq": [.openAt], "OpenCreateAtReq": [.openCreateAt],
        "CloseReq": [.close], "FsyncReq": [.fSync], "PWriteReq": [.pWrite], "PReadReq": [.pRead],
        "MkdirAtReq": [.mkdirAt], "MknodAtReq": [.mknodAt], "SymlinkAtReq": [.symlinkAt],
        "LinkAtReq": [.linkAt], "FStatFSReq": [.fStatFS], "FAllocateReq": [.fAllocate],
        "ReadLinkAtReq": [.readLinkAt], "FlushReq": [.flush], "ConnectReq": [.connect],
        "UnlinkAtReq": [.unlinkAt], "RenameAtReq": [.renameAt], "Getdents64Req": [.getdents64],
        "FGetXattrReq": [.fGetXattr], "FSetXattrReq": [.fSetXattr], "FListXattrReq": [.fListXattr],
        "FRemoveXattrReq": [.fRemoveXattr], "BindAtReq": [.bindAt], "ListenReq": [.listen],
        "AcceptReq": [.accept], "ConnectWithCredsReq": [.connectWithCreds], "RenameAt2Req": [.renameAt2],
    ]
}

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.makeIterator()
    while let hi = it.next(), let lo = it.next() {
        out.append(UInt8(String([hi, lo]), radix: 16)!)
    }
    return out
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xf)]] })
}
