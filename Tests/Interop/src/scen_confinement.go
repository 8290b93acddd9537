package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// outsideDir is a directory next to (not inside) a scenario's mount root.
func outsideDir(mountDir string) string { return mountDir + "-outside" }

// symlink-escape: symlinks pointing outside the mount must never be followed
// by the server, whatever message reaches them.
var scenarioSymlinkEscape = Scenario{
	Name: "symlink-escape",
	Setup: func(t *T, dir string) {
		out := outsideDir(dir)
		mkdirHost(t, out)
		writeHostFile(t, out+"/victim", []byte("outside"))
		if err := os.Chmod(out, 0755); err != nil {
			t.Fatalf("%v", err)
		}
		writeHostFile(t, dir+"/f", []byte("inside"))
		for name, target := range map[string]string{"esc": out, "up": "..", "escfile": out + "/victim"} {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatalf("%v", err)
			}
		}
	},
	Run: func(t *T) {
		out := outsideDir(t.S.Dir)
		root := &t.S.RootFD
		for _, link := range []string{"esc", "up"} {
			status, inodes, err := root.WalkMultiple(t.Ctx, []string{link, "victim"})
			t.Obs.Addf("Walk["+link+" victim]", "%s status=%d n=%d", errnoName(err), status, len(inodes))
			if err == nil && (len(inodes) > 1 || (len(inodes) == 1 && inodes[0].Stat.Mode&linux.S_IFMT != linux.S_IFLNK)) {
				t.Errorf("Walk[%s victim] went through the symlink: %d inodes, first mode %#o", link, len(inodes), inodes[0].Stat.Mode)
			}
			for _, in := range inodes {
				t.Close(t.FD(in.ControlFD))
			}
			stats, err := root.WalkStat(t.Ctx, []string{link, "victim"})
			t.Obs.Addf("WalkStat["+link+" victim]", "%s n=%d", errnoName(err), len(stats))
			if len(stats) > 1 {
				t.Errorf("WalkStat[%s victim] went through the symlink", link)
			}
		}
		esc := t.WalkFD("esc")
		// Opening a symlink's control FD must not open its target.
		for _, name := range []string{"esc", "escfile"} {
			cfd := t.WalkFD(name)
			id, h, err := cfd.OpenAt(t.Ctx, unix.O_RDONLY)
			t.Obs.Add("OpenAt(symlink "+name+")", errnoName(err))
			if err == nil {
				t.Errorf("OpenAt on symlink %s succeeded (donated FD %d)", name, h)
				if h >= 0 {
					buf := make([]byte, 16)
					if n, _ := unix.Pread(h, buf, 0); n > 0 && strings.HasPrefix("outside", string(buf[:n])) {
						t.Errorf("OpenAt(%s) donated an FD reading the file OUTSIDE the mount", name)
					}
					unix.Close(h)
				}
				t.Close(t.FD(id))
			}
			t.Close(cfd)
		}
		// Using the symlink's FD as a directory must fail and touch nothing outside.
		_, _, h, err := esc.OpenCreateAt(t.Ctx, "pwned", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		closeIfValid(h)
		t.Obs.Add("OpenCreateAt(in symlink)", errnoName(err))
		_, err = esc.MkdirAt(t.Ctx, "pwned-dir", 0755, myUID, myGID)
		t.Obs.Add("MkdirAt(in symlink)", errnoName(err))
		_, err = esc.SymlinkAt(t.Ctx, "pwned-link", "x", myUID, myGID)
		t.Obs.Add("SymlinkAt(in symlink)", errnoName(err))
		err = esc.UnlinkAt(t.Ctx, "victim", 0)
		t.Obs.Add("UnlinkAt(in symlink)", errnoName(err))
		err = root.RenameAt(t.Ctx, "f", esc.ID(), "moved")
		t.Obs.Add("RenameAt(into symlink)", errnoName(err))
		err = esc.RenameAt(t.Ctx, "victim", root.ID(), "stolen")
		t.Obs.Add("RenameAt(out of symlink)", errnoName(err))
		f := t.WalkFD("f")
		_, err = esc.LinkAt(t.Ctx, f.ID(), "pwned-hard")
		t.Obs.Add("LinkAt(into symlink)", errnoName(err))
		t.Close(f)
		_, err = esc.Walk(t.Ctx, "victim")
		t.Obs.Add("Walk(from symlink FD)", errnoName(err))
		if err == nil {
			t.Errorf("Walk from a symlink's FD succeeded")
		}
		mask, ferr, err := esc.SetStat(t.Ctx, &linux.Statx{Mask: linux.STATX_MODE, Mode: 0700})
		// Only whether it was refused is compared: fsgofer's fchmod on an O_PATH
		// FD gives EBADF, lchmod semantics give EOPNOTSUPP; both are refusals.
		refused := err != nil || mask != 0
		t.Obs.Addf("SetStat(mode) on symlink refused", "%v", refused)
		t.Note("SetStat(mode) on a symlink: failure mask %#x, errno %s, rpc %s", mask, errnoName(ferr), errnoName(err))
		t.Close(esc)

		names, rerr := os.ReadDir(out)
		if rerr != nil {
			t.Fatalf("%v", rerr)
		}
		var got []string
		for _, e := range names {
			got = append(got, e.Name())
		}
		if fmt.Sprint(got) != "[victim]" {
			t.Errorf("directory OUTSIDE the mount changed: %v", got)
		}
		var st unix.Stat_t
		if err := unix.Stat(out, &st); err == nil && st.Mode&0777 != 0755 {
			t.Errorf("mode of the directory OUTSIDE the mount changed to %#o", st.Mode&0777)
		}
		if b, _ := os.ReadFile(out + "/victim"); string(b) != "outside" {
			t.Errorf("file outside the mount changed: %q", b)
		}
		if !t.HostExists("f") {
			t.Errorf("f was moved out of the mount")
		}
	},
}

// fd-leak: after many walk/open/create/close cycles (closes flushed), the
// server holds no more host FDs than after mount.
var scenarioFDLeak = Scenario{
	Name: "fd-leak",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/f", []byte("data"))
		mkdirHost(t, dir+"/d")
	},
	Run: func(t *T) {
		proc := "/proc/self/fd"
		if t.S.child != nil {
			proc = fmt.Sprintf("/proc/%d/fd", t.S.child.Process.Pid)
		}
		// A sealed store opens meta/files/XX (its 256 sidecar fan-out
		// directories) lazily and keeps them open (StoreLayout.sidecarDirectory):
		// bounded by design, so not counted, but checked against the bound.
		isFanout := func(fd string) bool {
			if !t.Sealed() {
				return false
			}
			target, err := os.Readlink(proc + "/" + fd)
			if err != nil {
				return false
			}
			rel := strings.TrimPrefix(target, t.S.Sealed.store+"/meta/files/")
			return rel != target && len(rel) == 2 && !strings.Contains(rel, "/")
		}
		// `serve --store` also keeps new files and empty scratches made ahead by
		// background threads (Keys/README.md §7.1, creation pool: up to 32 of
		// each, refilled once half is taken): meta/pending/<id>.new and unnamed
		// scratch files. Their number moves between two samples, so they are
		// counted apart, each allowed to grow by at most that bound.
		pooledKind := func(fd string) int {
			if !t.Sealed() {
				return 0
			}
			target, err := os.Readlink(proc + "/" + fd)
			if err != nil {
				return 0
			}
			if strings.HasPrefix(target, t.S.Sealed.store+"/meta/pending/") && strings.HasSuffix(target, ".new") {
				return 1
			}
			if strings.HasSuffix(target, " (deleted)") &&
				(strings.HasPrefix(target, "/#") || strings.HasPrefix(target, t.S.Sealed.scratch+"/#")) {
				return 2
			}
			return 0
		}
		const poolBound = 32
		fanout, pooled, scratches := 0, 0, 0
		count := func() int {
			ents, err := os.ReadDir(proc)
			if err != nil {
				t.Fatalf("%v", err)
			}
			n := 0
			fanout, pooled, scratches = 0, 0, 0
			for _, e := range ents {
				switch {
				case isFanout(e.Name()):
					fanout++
				case pooledKind(e.Name()) == 1:
					pooled++
				case pooledKind(e.Name()) == 2:
					scratches++
				default:
					n++
				}
			}
			return n
		}
		// targets summarizes what the server's FDs point at, for a leak report.
		targets := func() map[string]int {
			out := map[string]int{}
			ents, _ := os.ReadDir(proc)
			for _, e := range ents {
				target, err := os.Readlink(proc + "/" + e.Name())
				if err != nil {
					continue
				}
				if isFanout(e.Name()) {
					continue
				}
				target = strings.TrimPrefix(target, t.S.Dir)
				if t.Sealed() {
					target = strings.Replace(target, t.S.Sealed.store, "$STORE", 1)
					target = strings.Replace(target, t.S.Sealed.scratch, "$SCRATCH", 1)
				}
				out[target]++
			}
			return out
		}
		cycle := func(i int) {
			f := t.WalkFD("f")
			o, h := t.Open(f, unix.O_RDWR)
			closeIfValid(h)
			t.Close(o)
			t.Close(f)
			d := t.WalkFD("d")
			od, h := t.Open(d, unix.O_RDONLY)
			closeIfValid(h)
			readAllDirents(t, od, 4096)
			t.Close(od)
			name := fmt.Sprintf("c%d", i)
			in, ofd, h, err := d.OpenCreateAt(t.Ctx, name, unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
			t.Must(err, "OpenCreateAt")
			closeIfValid(h)
			t.Close(t.FD(ofd))
			t.Close(t.FD(in.ControlFD))
			t.Must(d.UnlinkAt(t.Ctx, name, 0), "UnlinkAt")
			_, err = d.Walk(t.Ctx, "missing")
			if err != unix.ENOENT {
				t.Errorf("Walk(missing): %s", errnoName(err))
			}
			t.Close(d)
		}
		cycle(-1) // warm up lazily opened server FDs
		before := count()
		scratchesBefore := scratches
		beforeTargets := targets()
		for i := 0; i < 200; i++ {
			cycle(i)
		}
		after := count()
		t.Note("server-side FDs: %d before, %d after 200 cycles", before, after)
		if t.Sealed() {
			t.Note("sealed: plus %d open meta/files/XX fan-out directories (at most 256 by design)", fanout)
			if fanout > 256 {
				t.Errorf("sealed server holds %d meta/files/XX directory FDs, more than the 256 fan-out directories", fanout)
			}
			t.Note("sealed: plus %d pooled new files (at most %d by design) and %d unnamed scratch files (%d before)",
				pooled, poolBound, scratches, scratchesBefore)
			if pooled > poolBound {
				t.Errorf("sealed server holds %d pooled new files, more than its pool's bound %d", pooled, poolBound)
			}
			if scratches > scratchesBefore+poolBound {
				t.Errorf("sealed server's unnamed scratch files grew from %d to %d over 200 cycles (leak)", scratchesBefore, scratches)
			}
		}
		if after > before+4 {
			var grown []string
			for target, n := range targets() {
				if n > beforeTargets[target] {
					grown = append(grown, fmt.Sprintf("%s: %d -> %d", target, beforeTargets[target], n))
				}
			}
			sort.Strings(grown)
			if len(grown) > 12 {
				grown = append(grown[:12], fmt.Sprintf("... (%d more)", len(grown)-12))
			}
			t.Errorf("server FD count grew from %d to %d over 200 open/close cycles (leak); grown:\n  %s", before, after, strings.Join(grown, "\n  "))
		}
	},
}
