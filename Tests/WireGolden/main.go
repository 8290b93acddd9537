// Command wiregolden prints golden lisafs payloads produced by gVisor's own
// marshalling code (Debian's golang-gvisor-gvisor-dev, MIDs 0-31), as JSON
// [{name, hex}], for the Swift wire tests. Run it through ./regen.
//
// The sample values here are mirrored field for field in
// Tests/LisafsTests/WireGoldenSamples.swift; change both together.
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"unsafe"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
	"gvisor.dev/gvisor/pkg/marshal/primitive"
)

type marshaller interface {
	SizeBytes() int
	MarshalBytes(dst []byte) []byte
}

type golden struct {
	Name string `json:"name"`
	Hex  string `json:"hex"`
}

var out []golden

func add(name string, m marshaller) {
	buf := make([]byte, m.SizeBytes())
	if rest := m.MarshalBytes(buf); len(rest) != 0 {
		panic(fmt.Sprintf("%s: MarshalBytes left %d bytes of SizeBytes unwritten", name, len(rest)))
	}
	out = append(out, golden{Name: name, Hex: hex.EncodeToString(buf)})
}

// statx builds a Statx whose fields all differ from zero and from each other;
// k varies ino and size so that arrays of them are distinguishable.
func statx(k uint64) linux.Statx {
	return linux.Statx{
		Mask:           0x7ff,
		Blksize:        4096,
		Attributes:     0x20,
		Nlink:          3,
		UID:            1000,
		GID:            1001,
		Mode:           0o100644,
		Ino:            0x1122334455667700 + k,
		Size:           1000*k + 7,
		Blocks:         241,
		AttributesMask: 0x30,
		Atime:          linux.StatxTimestamp{Sec: 1700000000, Nsec: 111},
		Btime:          linux.StatxTimestamp{Sec: 1600000000, Nsec: 222},
		Ctime:          linux.StatxTimestamp{Sec: 1700000001, Nsec: 333},
		Mtime:          linux.StatxTimestamp{Sec: -5, Nsec: 999999999},
		RdevMajor:      8,
		RdevMinor:      1,
		DevMajor:       253,
		DevMinor:       7,
	}
}

func inode(fd lisafs.FDID, k uint64) lisafs.Inode {
	return lisafs.Inode{ControlFD: fd, Stat: statx(k)}
}

func main() {
	add("MountReq", &lisafs.MountReq{})
	add("MountResp", &lisafs.MountResp{
		Root:           inode(1, 1),
		MaxMessageSize: 2093056,
		SupportedMs:    []lisafs.MID{1, 2, 3, 4, 5, 6, 7, 9, 12, 31, 0xfffe},
	})
	add("ChannelReq", &lisafs.ChannelReq{})
	var chanResp lisafs.ChannelResp
	// dataOffset/dataLength are unexported; set them through their layout.
	*(*struct {
		off int64
		len uint64
	})(unsafe.Pointer(&chanResp)) = struct {
		off int64
		len uint64
	}{4096, 2093056}
	add("ChannelResp", &chanResp)
	var errResp lisafs.ErrorResp
	*(*uint32)(unsafe.Pointer(&errResp)) = 2 // ENOENT; errno is unexported
	add("ErrorResp", &errResp)

	add("StatReq", &lisafs.StatReq{FD: 0x0102030405060708})
	sx := statx(9)
	add("Statx", &sx)
	add("SetStatReq", &lisafs.SetStatReq{
		FD: 7, Mask: 0x1 | 0x8 | 0x10 | 0x20 | 0x200, Mode: 0o644, UID: 1000, GID: lisafs.NoGID,
		Size: 4096, Atime: linux.Timespec{Sec: 1, Nsec: 2}, Mtime: linux.Timespec{Sec: -3, Nsec: 999999999},
	})
	add("SetStatResp", &lisafs.SetStatResp{FailureMask: 0x4, FailureErrNo: 1})

	add("WalkReq", &lisafs.WalkReq{DirFD: 2, Path: lisafs.StringArray{"usr", "lib", "a\x00b\xff"}})
	add("WalkResp", &lisafs.WalkResp{Status: lisafs.WalkComponentSymlink, Inodes: []lisafs.Inode{inode(10, 2), inode(11, 3)}})
	add("WalkStatResp", &lisafs.WalkStatResp{Stats: []linux.Statx{statx(4), statx(5), statx(6)}})

	add("OpenAtReq", &lisafs.OpenAtReq{FD: 3, Flags: 0x202})
	add("OpenAtResp", &lisafs.OpenAtResp{OpenFD: 12})
	oc := lisafs.OpenCreateAtReq{Flags: 0x42, Name: "new file.txt"}
	oc.DirFD, oc.UID, oc.GID, oc.Mode = 2, 1000, 1000, 0o100600
	add("OpenCreateAtReq", &oc)
	add("OpenCreateAtResp", &lisafs.OpenCreateAtResp{Child: inode(13, 7), NewFD: 14})

	add("CloseReq", &lisafs.CloseReq{FDs: lisafs.FdArray{5, 6, 0xffffffffffffffff}})
	add("CloseResp", &lisafs.CloseResp{})
	add("FsyncReq", &lisafs.FsyncReq{FDs: lisafs.FdArray{9}})
	add("FsyncResp", &lisafs.FsyncResp{})

	add("PReadReq", &lisafs.PReadReq{Offset: 1 << 40, FD: 9, Count: 65536})
	readData := []byte{'h', 'e', 'l', 'l', 'o', 0, 0xff, ' ', 'w', 'o', 'r'}
	add("PReadResp", &lisafs.PReadResp{NumBytes: primitive.Uint64(len(readData)), Buf: readData})
	writeData := []byte{0, 1, 2, 0xfe, 0xff, 'x'}
	add("PWriteReq", &lisafs.PWriteReq{Offset: 4096, FD: 9, NumBytes: primitive.Uint32(len(writeData)), Buf: writeData})
	add("PWriteResp", &lisafs.PWriteResp{Count: 6})

	mk := lisafs.MkdirAtReq{Name: "dir"}
	mk.DirFD, mk.UID, mk.GID, mk.Mode = 2, 0, 0, 0o40755
	add("MkdirAtReq", &mk)
	add("MkdirAtResp", &lisafs.MkdirAtResp{ChildDir: inode(15, 8)})
	mn := lisafs.MknodAtReq{Minor: 3, Major: 1, Name: "null"}
	mn.DirFD, mn.UID, mn.GID, mn.Mode = 2, 1, 2, 0o20666
	add("MknodAtReq", &mn)
	add("MknodAtResp", &lisafs.MknodAtResp{Child: inode(16, 9)})
	add("SymlinkAtReq", &lisafs.SymlinkAtReq{DirFD: 2, UID: 1000, GID: 1000, Name: "link", Target: "../target/\u00fc"})
	add("SymlinkAtResp", &lisafs.SymlinkAtResp{Symlink: inode(17, 10)})
	add("LinkAtReq", &lisafs.LinkAtReq{DirFD: 2, Target: 13, Name: "hard"})
	add("LinkAtResp", &lisafs.LinkAtResp{Link: inode(13, 7)})

	add("FStatFSReq", &lisafs.FStatFSReq{FD: 2})
	add("StatFS", &lisafs.StatFS{
		Type: 0x58465342, BlockSize: 4096, Blocks: 1000000, BlocksFree: 500000,
		BlocksAvailable: 400000, Files: 65536, FilesFree: 60000, NameLength: 255,
	})
	add("FAllocateReq", &lisafs.FAllocateReq{FD: 9, Mode: 1, Offset: 100, Length: 200})
	add("FAllocateResp", &lisafs.FAllocateResp{})
	add("ReadLinkAtReq", &lisafs.ReadLinkAtReq{FD: 17})
	add("ReadLinkAtResp", &lisafs.ReadLinkAtResp{Target: "../target/\u00fc"})
	add("FlushReq", &lisafs.FlushReq{FD: 9})
	add("FlushResp", &lisafs.FlushResp{})
	add("ConnectReq", &lisafs.ConnectReq{FD: 20, SockType: 1})
	add("ConnectResp", &lisafs.ConnectResp{})
	add("UnlinkAtReq", &lisafs.UnlinkAtReq{DirFD: 2, Flags: 0x200, Name: "dir"})
	add("UnlinkAtResp", &lisafs.UnlinkAtResp{})
	add("RenameAtReq", &lisafs.RenameAtReq{OldDir: 2, NewDir: 3, OldName: "old", NewName: "new\xff"})
	add("RenameAtResp", &lisafs.RenameAtResp{})

	add("Getdents64Req", &lisafs.Getdents64Req{DirFD: 2, Count: -4096})
	add("Getdents64Resp", &lisafs.Getdents64Resp{Dirents: []lisafs.Dirent64{
		{Ino: 1, DevMinor: 7, DevMajor: 253, Off: 1, Type: 4, Name: "."},
		{Ino: 2, DevMinor: 7, DevMajor: 253, Off: 2, Type: 4, Name: ".."},
		{Ino: 99, DevMinor: 7, DevMajor: 253, Off: 0x7fffffffffffffff, Type: 8, Name: "file\x00x"},
	}})

	add("FGetXattrReq", &lisafs.FGetXattrReq{FD: 9, BufSize: 256, Name: "user.key"})
	add("FGetXattrResp", &lisafs.FGetXattrResp{Value: "\x00\x01value"})
	add("FSetXattrReq", &lisafs.FSetXattrReq{FD: 9, Flags: 1, Name: "user.key", Value: "v\x00\xff"})
	add("FSetXattrResp", &lisafs.FSetXattrResp{})
	add("FListXattrReq", &lisafs.FListXattrReq{FD: 9, Size: 1024})
	add("FListXattrResp", &lisafs.FListXattrResp{Xattrs: lisafs.StringArray{"user.a", "security.selinux", ""}})
	add("FRemoveXattrReq", &lisafs.FRemoveXattrReq{FD: 9, Name: "user.a"})
	add("FRemoveXattrResp", &lisafs.FRemoveXattrResp{})

	ba := lisafs.BindAtReq{SockType: 1, Name: "sock"}
	ba.DirFD, ba.UID, ba.GID, ba.Mode = 2, 1000, 1000, 0o140755
	add("BindAtReq", &ba)
	add("BindAtResp", &lisafs.BindAtResp{Child: inode(18, 11), BoundSocketFD: 19})
	add("ListenReq", &lisafs.ListenReq{FD: 19, Backlog: -1})
	add("ListenResp", &lisafs.ListenResp{})
	add("AcceptReq", &lisafs.AcceptReq{FD: 19})
	add("AcceptResp", &lisafs.AcceptResp{PeerAddr: "@abstract"})

	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
