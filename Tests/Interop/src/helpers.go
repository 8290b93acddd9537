package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

// myUID/myGID are passed as the owner of created files, as the sentry does
// for a root application in a rootful sandbox.
var myUID, myGID = lisafs.UID(os.Getuid()), lisafs.GID(os.Getgid())

// FD wraps an FDID returned by the server in a ClientFD.
func (t *T) FD(id lisafs.FDID) *lisafs.ClientFD {
	fd := t.S.Client.NewFD(id)
	return &fd
}

// Close closes an FD on the server right away (flush=true) so that later
// checks do not depend on the client's close batching.
// The caller's ClientFD keeps its FDID, so tests can reuse it as a stale ID.
func (t *T) Close(fd *lisafs.ClientFD) {
	c := *fd
	c.Close(t.Ctx, true)
}

// WalkPath walks names from dir and returns the final inode; intermediate
// control FDs are closed. A non-success status is fatal.
func (t *T) WalkPath(dir *lisafs.ClientFD, names ...string) lisafs.Inode {
	status, inodes, err := dir.WalkMultiple(t.Ctx, names)
	t.Must(err, fmt.Sprintf("Walk%v", names))
	if status != lisafs.WalkSuccess || len(inodes) != len(names) {
		for _, in := range inodes {
			t.Close(t.FD(in.ControlFD))
		}
		t.Fatalf("Walk%v: status %d with %d inodes, want success with %d", names, status, len(inodes), len(names))
	}
	for _, in := range inodes[:len(inodes)-1] {
		t.Close(t.FD(in.ControlFD))
	}
	return inodes[len(inodes)-1]
}

// WalkFD walks names from the root and returns a control FD for the result.
func (t *T) WalkFD(names ...string) *lisafs.ClientFD {
	return t.FD(t.WalkPath(&t.S.RootFD, names...).ControlFD)
}

// Open opens a control FD and returns the open FD plus any donated host FD.
func (t *T) Open(cfd *lisafs.ClientFD, flags uint32) (*lisafs.ClientFD, int) {
	id, hostFD, err := cfd.OpenAt(t.Ctx, flags)
	t.Must(err, fmt.Sprintf("OpenAt(flags=%#x)", flags))
	return t.FD(id), hostFD
}

// HostLstat stats a mount-relative path on the host directly (for a sealed
// store: through the client, see hostview.go).
func (t *T) HostLstat(rel string) unix.Stat_t {
	st, err := t.View.Lstat(rel)
	if err != nil {
		t.Fatalf("host lstat %s: %v", rel, errnoName(err))
	}
	return st
}

// HostExists reports whether rel exists on the host (without following links).
func (t *T) HostExists(rel string) bool {
	_, err := t.View.Lstat(rel)
	return err == nil
}

// HostRead reads a host file.
func (t *T) HostRead(rel string) []byte {
	b, err := t.View.Read(rel)
	if err != nil {
		t.Fatalf("host read %s: %v", rel, errnoName(err))
	}
	return b
}

// HostWrite writes a host file (mode 0644): an outside writer for passthrough
// servers; for a sealed store, another FD of the same connection.
func (t *T) HostWrite(rel string, data []byte) {
	if err := t.View.Write(rel, data); err != nil {
		t.Fatalf("host write %s: %v", rel, errnoName(err))
	}
}

// CheckStatMatchesHost compares the fields a passthrough server must report
// faithfully with a host lstat of rel.
func (t *T) CheckStatMatchesHost(label string, got *linux.Statx, rel string) {
	want := t.HostLstat(rel)
	if uint32(got.Mode) != want.Mode {
		t.Errorf("%s: mode %#o, host has %#o", label, got.Mode, want.Mode)
	}
	if got.Size != uint64(want.Size) {
		t.Errorf("%s: size %d, host has %d", label, got.Size, want.Size)
	}
	if got.Nlink != uint32(want.Nlink) {
		t.Errorf("%s: nlink %d, host has %d", label, got.Nlink, want.Nlink)
	}
	if got.UID != want.Uid || got.GID != want.Gid {
		t.Errorf("%s: owner %d:%d, host has %d:%d", label, got.UID, got.GID, want.Uid, want.Gid)
	}
	if got.Mtime.Sec != want.Mtim.Sec || int64(got.Mtime.Nsec) != want.Mtim.Nsec {
		t.Errorf("%s: mtime %d.%09d, host has %d.%09d", label, got.Mtime.Sec, got.Mtime.Nsec, want.Mtim.Sec, want.Mtim.Nsec)
	}
	const need = linux.STATX_TYPE | linux.STATX_MODE | linux.STATX_SIZE | linux.STATX_NLINK | linux.STATX_MTIME
	if got.Mask&need != need {
		t.Errorf("%s: statx mask %#x lacks %#x", label, got.Mask, need&^got.Mask)
	}
}

// ObsStat records the server-independent parts of a stat result.
func (t *T) ObsStat(key string, st *linux.Statx) {
	t.Obs.Addf(key, "mode=%#o size=%d nlink=%d", st.Mode, st.Size, st.Nlink)
}

// ReadAll reads [off, off+n) through PRead.
func (t *T) ReadAll(fd *lisafs.ClientFD, off uint64, n int) []byte {
	buf := make([]byte, n)
	got, err := fd.Read(t.Ctx, buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("PRead(off=%d, n=%d): %s", off, n, errnoName(err))
	}
	return buf[:got]
}

// ExpectBytes compares two byte slices and reports the first difference.
func (t *T) ExpectBytes(label string, got, want []byte) {
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: %d bytes, want %d; first difference at offset %d", label, len(got), len(want), i)
}

// pattern returns n deterministic, position-dependent bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
	return b
}
