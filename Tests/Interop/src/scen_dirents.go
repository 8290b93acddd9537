package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

const bigDirEntries = 5000

// readAllDirents reads a directory the way the sentry does: the first
// Getdents64 carries a negative count (seek to 0), then it repeats until an
// empty batch. Duplicate names are failures.
func readAllDirents(t *T, dir *lisafs.ClientFD, count int32) map[string]lisafs.Dirent64 {
	out := map[string]lisafs.Dirent64{}
	n := -count
	for calls := 0; ; calls++ {
		if calls > 100000 {
			t.Fatalf("Getdents64 never returned an empty batch")
		}
		ents, err := dir.Getdents64(t.Ctx, n)
		t.Must(err, fmt.Sprintf("Getdents64(count=%d)", n))
		n = count
		if len(ents) == 0 {
			return out
		}
		for _, e := range ents {
			name := string(e.Name)
			if _, dup := out[name]; dup {
				t.Errorf("Getdents64 returned %q twice", name)
			}
			out[name] = e
		}
	}
}

var scenarioGetdents = Scenario{
	Name: "getdents",
	Setup: func(t *T, dir string) {
		for i := 0; i < bigDirEntries; i++ {
			writeHostFile(t, fmt.Sprintf("%s/f%05d", dir, i), nil)
		}
		mkdirHost(t, dir+"/sub")
		if err := os.Symlink("f00000", dir+"/sl"); err != nil {
			t.Fatalf("%v", err)
		}
	},
	Run: func(t *T) {
		ofd, h := t.Open(&t.S.RootFD, unix.O_RDONLY)
		closeIfValid(h)
		want := map[string]uint8{"sub": linux.DT_DIR, "sl": linux.DT_LNK}
		for i := 0; i < bigDirEntries; i++ {
			want[fmt.Sprintf("f%05d", i)] = linux.DT_REG
		}
		check := func(label string, got map[string]lisafs.Dirent64) {
			_, dot := got["."]
			_, dotdot := got[".."]
			delete(got, ".")
			delete(got, "..")
			t.Obs.Addf(label+" entries", "%d", len(got))
			t.Note("%s: %d entries (+ . %v, .. %v)", label, len(got), dot, dotdot)
			if len(got) != len(want) {
				t.Errorf("%s: %d entries, want %d", label, len(got), len(want))
			}
			inos := map[uint64]string{}
			for name, typ := range want {
				e, ok := got[name]
				if !ok {
					t.Errorf("%s: missing %q", label, name)
					continue
				}
				if uint8(e.Type) != typ {
					t.Errorf("%s: %q has type %d, want %d", label, name, e.Type, typ)
				}
				if prev, dup := inos[uint64(e.Ino)]; dup {
					t.Errorf("%s: %q and %q share ino %d", label, name, prev, e.Ino)
				}
				inos[uint64(e.Ino)] = name
			}
			for name := range got {
				if _, ok := want[name]; !ok {
					t.Errorf("%s: unexpected entry %q", label, name)
				}
			}
		}
		first := readAllDirents(t, ofd, 65536)
		// The dirent's (ino, dev) must identify the same file that Walk reports,
		// since the sentry keys its inode numbers on that.
		sub := t.WalkPath(&t.S.RootFD, "sub")
		if e, ok := first["sub"]; ok && (uint64(e.Ino) != sub.Stat.Ino || uint32(e.DevMajor) != sub.Stat.DevMajor || uint32(e.DevMinor) != sub.Stat.DevMinor) {
			t.Errorf("dirent for sub has ino %d dev %d:%d, Walk says ino %d dev %d:%d",
				e.Ino, e.DevMajor, e.DevMinor, sub.Stat.Ino, sub.Stat.DevMajor, sub.Stat.DevMinor)
		}
		t.Close(t.FD(sub.ControlFD))
		check("65536-byte batches", first)
		// Seek back to 0 and read again in small batches: resumption must
		// neither skip nor repeat entries.
		check("1024-byte batches after seek0", readAllDirents(t, ofd, 1024))
		t.Close(ofd)
	},
}

var scenarioStatFS = Scenario{
	Name: "statfs",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/f", nil)
	},
	Run: func(t *T) {
		var fs lisafs.StatFS
		t.Must(t.S.RootFD.StatFSTo(t.Ctx, &fs), "FStatFS(root)")
		var host unix.Statfs_t
		hostDir := t.S.Dir
		if t.Sealed() {
			hostDir = t.S.Sealed.store // the filesystem holding the ciphertext
		}
		if err := unix.Statfs(hostDir, &host); err != nil {
			t.Fatalf("host statfs: %v", err)
		}
		t.Obs.Addf("FStatFS", "type=%#x bsize=%d namelen=%d", fs.Type, fs.BlockSize, fs.NameLength)
		if fs.Type != uint64(host.Type) || fs.BlockSize != host.Bsize || fs.NameLength != uint64(host.Namelen) {
			t.Errorf("FStatFS type %#x bsize %d namelen %d; host %#x %d %d", fs.Type, fs.BlockSize, fs.NameLength, host.Type, host.Bsize, host.Namelen)
		}
		if fs.Blocks != host.Blocks || fs.Files != host.Files {
			t.Errorf("FStatFS blocks %d files %d; host %d %d", fs.Blocks, fs.Files, host.Blocks, host.Files)
		}
		near := func(a, b uint64) bool {
			d := int64(a) - int64(b)
			if d < 0 {
				d = -d
			}
			return uint64(d) <= b/100+1024
		}
		if !near(fs.BlocksFree, host.Bfree) || !near(fs.BlocksAvailable, host.Bavail) || !near(fs.FilesFree, host.Ffree) {
			t.Errorf("FStatFS free counts (%d, %d, %d) far from host (%d, %d, %d)", fs.BlocksFree, fs.BlocksAvailable, fs.FilesFree, host.Bfree, host.Bavail, host.Ffree)
		}
		// FStatFS through a non-root FD reports the same filesystem.
		f := t.WalkFD("f")
		var fs2 lisafs.StatFS
		t.Must(f.StatFSTo(t.Ctx, &fs2), "FStatFS(f)")
		if fs2.Type != fs.Type || fs2.Blocks != fs.Blocks {
			t.Errorf("FStatFS(f) differs from FStatFS(root)")
		}
		t.Close(f)
	},
}
