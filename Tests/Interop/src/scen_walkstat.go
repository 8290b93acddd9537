package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

// fsgoferMessages is what runsc/fsgofer advertises at Mount (Debian's
// gVisor): every one of them is used by the sentry's gofer client, so a
// replacement gofer must advertise them too.
var fsgoferMessages = []lisafs.MID{
	lisafs.Mount, lisafs.Channel, lisafs.FStat, lisafs.SetStat, lisafs.Walk, lisafs.WalkStat,
	lisafs.OpenAt, lisafs.OpenCreateAt, lisafs.Close, lisafs.FSync, lisafs.PWrite, lisafs.PRead,
	lisafs.MkdirAt, lisafs.MknodAt, lisafs.SymlinkAt, lisafs.LinkAt, lisafs.FStatFS, lisafs.FAllocate,
	lisafs.ReadLinkAt, lisafs.Connect, lisafs.UnlinkAt, lisafs.RenameAt, lisafs.Getdents64,
	lisafs.FGetXattr, lisafs.FSetXattr, lisafs.BindAt, lisafs.Listen, lisafs.Accept,
}

// sealedUnsupported are the MIDs SealedProvider deliberately does not
// advertise (Sources/SealedProvider/SealedProvider.swift, supportedMIDs): a
// store holds only files, directories and symlinks, and no xattrs. The
// client answers them with EOPNOTSUPP without a round trip.
var sealedUnsupported = map[lisafs.MID]bool{
	lisafs.BindAt: true, lisafs.Listen: true, lisafs.Accept: true, lisafs.Connect: true,
	lisafs.FGetXattr: true, lisafs.FSetXattr: true, lisafs.FListXattr: true, lisafs.FRemoveXattr: true,
}

// populateTree builds a/b/c/file, a/link -> b, and f on the host.
func populateTree(t *T, dir string) {
	if err := os.MkdirAll(dir+"/a/b/c", 0755); err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(dir+"/a/b/c/file", withMarker("hello"), 0644); err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.Symlink("b", dir+"/a/link"); err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(dir+"/f", []byte("top"), 0600); err != nil {
		t.Fatalf("%v", err)
	}
}

var scenarioMount = Scenario{
	Name: "mount",
	Run: func(t *T) {
		root := t.S.Root
		if root.Stat.Mode&linux.S_IFMT != linux.S_IFDIR {
			t.Errorf("root inode mode %#o is not a directory", root.Stat.Mode)
		}
		t.CheckStatMatchesHost("Mount root stat", &root.Stat, ".")
		var st linux.Statx
		t.Must(t.S.RootFD.StatTo(t.Ctx, &st), "FStat(root)")
		t.CheckStatMatchesHost("FStat(root)", &st, ".")
		var supported, missing []string
		for m := lisafs.MID(0); m <= 40; m++ {
			if t.Supported(m) {
				supported = append(supported, fmt.Sprint(m))
			}
		}
		for _, m := range fsgoferMessages {
			if !t.Supported(m) && !(t.Sealed() && sealedUnsupported[m]) {
				missing = append(missing, fmt.Sprint(m))
			}
		}
		t.Note("advertised MIDs: %s", strings.Join(supported, ","))
		if len(missing) > 0 {
			t.Errorf("does not advertise MIDs %s that fsgofer advertises and the sentry uses", strings.Join(missing, ","))
		}
		if t.Sealed() {
			// A store holds no sockets and no xattrs: the sentry must learn
			// that from the advertised set, not from failing calls.
			var wrongly []string
			for m := range sealedUnsupported {
				if t.Supported(m) {
					wrongly = append(wrongly, fmt.Sprint(m))
				}
			}
			if len(wrongly) > 0 {
				t.Errorf("sealed store advertises MIDs %s it cannot serve", strings.Join(wrongly, ","))
			}
		}
	},
}

var scenarioWalk = Scenario{
	Name:  "walk",
	Setup: populateTree,
	Run: func(t *T) {
		// Full multi-component walk.
		status, inodes, err := t.S.RootFD.WalkMultiple(t.Ctx, []string{"a", "b", "c", "file"})
		t.Must(err, "Walk[a b c file]")
		t.Obs.Addf("walk a/b/c/file", "status=%d n=%d", status, len(inodes))
		if status != lisafs.WalkSuccess || len(inodes) != 4 {
			t.Fatalf("Walk[a b c file]: status %d, %d inodes; want success, 4", status, len(inodes))
		}
		for i, rel := range []string{"a", "a/b", "a/b/c", "a/b/c/file"} {
			t.CheckStatMatchesHost("Walk inode "+rel, &inodes[i].Stat, rel)
			t.ObsStat("walk stat "+rel, &inodes[i].Stat)
		}
		fileFD := t.FD(inodes[3].ControlFD)
		ids := map[lisafs.FDID]bool{}
		for _, in := range inodes {
			if !in.ControlFD.Ok() || ids[in.ControlFD] {
				t.Errorf("Walk returned invalid or duplicate FDID %d", in.ControlFD)
			}
			ids[in.ControlFD] = true
		}
		for _, in := range inodes[:3] {
			t.Close(t.FD(in.ControlFD))
		}

		// Partial walk: a missing component stops the walk.
		status, inodes, err = t.S.RootFD.WalkMultiple(t.Ctx, []string{"a", "nope", "x"})
		t.Must(err, "Walk[a nope x]")
		t.Obs.Addf("walk a/nope/x", "status=%d n=%d", status, len(inodes))
		if status != lisafs.WalkComponentDoesNotExist || len(inodes) != 1 {
			t.Errorf("Walk[a nope x]: status %d, %d inodes; want WalkComponentDoesNotExist, 1", status, len(inodes))
		}
		for _, in := range inodes {
			t.Close(t.FD(in.ControlFD))
		}

		// A symlink terminates the walk; the client must resolve it itself.
		status, inodes, err = t.S.RootFD.WalkMultiple(t.Ctx, []string{"a", "link", "c"})
		t.Must(err, "Walk[a link c]")
		t.Obs.Addf("walk a/link/c", "status=%d n=%d", status, len(inodes))
		if status != lisafs.WalkComponentSymlink || len(inodes) != 2 {
			t.Errorf("Walk[a link c]: status %d, %d inodes; want WalkComponentSymlink, 2", status, len(inodes))
		} else if inodes[1].Stat.Mode&linux.S_IFMT != linux.S_IFLNK {
			t.Errorf("Walk[a link c]: second inode mode %#o is not a symlink", inodes[1].Stat.Mode)
		}
		for _, in := range inodes {
			t.Close(t.FD(in.ControlFD))
		}

		// Single-component walks.
		_, err = t.S.RootFD.Walk(t.Ctx, "missing")
		t.ExpectErrno("Walk(missing)", err, unix.ENOENT)
		_, err = fileFD.Walk(t.Ctx, "x")
		t.ExpectErrno("Walk from a regular file", err, unix.ENOTDIR)

		// Two walks to the same file give independent FDs.
		f1 := t.WalkFD("f")
		f2 := t.WalkFD("f")
		if f1.ID() == f2.ID() {
			t.Errorf("two walks to f returned the same FDID %d", f1.ID())
		}
		t.Close(f1)
		var st linux.Statx
		t.Must(f2.StatTo(t.Ctx, &st), "FStat(second walk FD after closing the first)")
		t.CheckStatMatchesHost("FStat(f)", &st, "f")
		t.Close(f2)
		t.Close(fileFD)
	},
}

var scenarioStat = Scenario{
	Name:  "stat",
	Setup: populateTree,
	Run: func(t *T) {
		for _, rel := range []string{"f", "a", "a/link", "a/b/c/file"} {
			fd := t.WalkFD(strings.Split(rel, "/")...)
			var st linux.Statx
			t.Must(fd.StatTo(t.Ctx, &st), "FStat("+rel+")")
			t.CheckStatMatchesHost("FStat("+rel+")", &st, rel)
			t.ObsStat("fstat "+rel, &st)
			t.Close(fd)
		}

		// FStat through an open FD, and no stale caching: a host-side change
		// must be visible on the next FStat.
		cfd := t.WalkFD("f")
		var before linux.Statx
		t.Must(cfd.StatTo(t.Ctx, &before), "FStat(f) before open")
		time.Sleep(20 * time.Millisecond)
		ofd, hostFD := t.Open(cfd, unix.O_RDONLY)
		if hostFD >= 0 {
			unix.Close(hostFD)
		}
		var st linux.Statx
		t.Must(ofd.StatTo(t.Ctx, &st), "FStat(open FD)")
		t.CheckStatMatchesHost("FStat(open FD of f)", &st, "f")
		// Opening for reading changes nothing: not the mtime, not the ctime.
		if st.Mtime != before.Mtime || st.Ctime != before.Ctime {
			t.Errorf("OpenAt(O_RDONLY) moved the times: mtime %d.%09d -> %d.%09d, ctime %d.%09d -> %d.%09d",
				before.Mtime.Sec, before.Mtime.Nsec, st.Mtime.Sec, st.Mtime.Nsec, before.Ctime.Sec, before.Ctime.Nsec, st.Ctime.Sec, st.Ctime.Nsec)
		}
		t.HostWrite("f", []byte("grown by the host"))
		t.Must(cfd.StatTo(t.Ctx, &st), "FStat(f) after host write")
		t.CheckStatMatchesHost("FStat(f) after host write", &st, "f")
		t.Must(ofd.StatTo(t.Ctx, &st), "FStat(open FD) after host write")
		t.CheckStatMatchesHost("FStat(open FD) after host write", &st, "f")
		t.Close(ofd)
		t.Close(cfd)

		if !t.Supported(lisafs.WalkStat) {
			t.Fatalf("server does not advertise WalkStat")
		}
		// "" first means: include the starting directory's own stat.
		stats, err := t.S.RootFD.WalkStat(t.Ctx, []string{"", "a", "b", "c", "file"})
		t.Must(err, "WalkStat['' a b c file]")
		t.Obs.Addf("walkstat full n", "%d", len(stats))
		if len(stats) != 5 {
			t.Fatalf("WalkStat['' a b c file]: %d stats, want 5", len(stats))
		}
		for i, rel := range []string{".", "a", "a/b", "a/b/c", "a/b/c/file"} {
			t.CheckStatMatchesHost("WalkStat "+rel, &stats[i], rel)
		}
		stats, err = t.S.RootFD.WalkStat(t.Ctx, []string{"a", "nope", "x"})
		t.Must(err, "WalkStat[a nope x]")
		t.Obs.Addf("walkstat partial n", "%d", len(stats))
		if len(stats) != 1 {
			t.Errorf("WalkStat[a nope x]: %d stats, want 1 (partial walk)", len(stats))
		}
		stats, err = t.S.RootFD.WalkStat(t.Ctx, []string{"a", "link", "c"})
		t.Must(err, "WalkStat[a link c]")
		t.Obs.Addf("walkstat symlink n", "%d", len(stats))
		if len(stats) != 2 {
			t.Errorf("WalkStat[a link c]: %d stats, want 2 (stops at the symlink)", len(stats))
		} else {
			t.CheckStatMatchesHost("WalkStat a/link", &stats[1], "a/link")
		}
	},
}

// sortedKeys returns the keys of a set in order.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
