package main

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

func mkdirHost(t *T, path string) {
	if err := os.MkdirAll(path, 0755); err != nil {
		t.Fatalf("host mkdir %s: %v", path, err)
	}
}

func writeHostFile(t *T, path string, data []byte) {
	if err := os.WriteFile(path, data, 0644); err != nil {
		t.Fatalf("host write %s: %v", path, err)
	}
}

// hostNames lists a host directory (without . and ..), in name order.
func hostNames(t *T, rel string) []string {
	names, err := t.View.Names(rel)
	if err != nil {
		t.Fatalf("host readdir %s: %v", rel, errnoName(err))
	}
	return names
}

var scenarioMkdir = Scenario{
	Name: "mkdir",
	Run: func(t *T) {
		rootLinks := t.HostLstat(".").Nlink
		in, err := t.S.RootFD.MkdirAt(t.Ctx, "d", 0750, myUID, myGID)
		t.Must(err, "MkdirAt(d)")
		t.ObsStat("MkdirAt(d) inode", &in.Stat)
		if in.Stat.Mode != linux.S_IFDIR|0750 || in.Stat.Nlink != 2 {
			t.Errorf("MkdirAt inode: mode %#o nlink %d; want %#o 2", in.Stat.Mode, in.Stat.Nlink, linux.S_IFDIR|0750)
		}
		t.CheckStatMatchesHost("MkdirAt(d) stat", &in.Stat, "d")
		if got := t.HostLstat(".").Nlink; got != rootLinks+1 {
			t.Errorf("host root nlink %d after mkdir, want %d", got, rootLinks+1)
		}
		d := t.FD(in.ControlFD)
		in2, err := d.MkdirAt(t.Ctx, "e", 0700, myUID, myGID)
		t.Must(err, "MkdirAt(d/e)")
		t.CheckStatMatchesHost("MkdirAt(d/e) stat", &in2.Stat, "d/e")
		t.Close(t.FD(in2.ControlFD))
		e := t.WalkPath(&t.S.RootFD, "d", "e")
		if e.Stat.Mode != linux.S_IFDIR|0700 {
			t.Errorf("Walk(d/e) mode %#o", e.Stat.Mode)
		}
		// A new directory lists as empty.
		ofd, h := t.Open(t.FD(e.ControlFD), unix.O_RDONLY)
		closeIfValid(h)
		names := readAllDirents(t, ofd, 65536)
		delete(names, ".")
		delete(names, "..")
		t.Obs.Addf("new dir entries", "%d", len(names))
		if len(names) != 0 {
			t.Errorf("new directory lists %v", sortedKeys(direntNames(names)))
		}
		t.Close(ofd)
		t.Close(t.FD(e.ControlFD))
		t.Close(d)
	},
}

var scenarioSymlink = Scenario{
	Name: "symlink",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/f", []byte("x"))
		if err := os.Symlink("../escape", dir+"/hostlink"); err != nil {
			t.Fatalf("%v", err)
		}
	},
	Run: func(t *T) {
		in, err := t.S.RootFD.SymlinkAt(t.Ctx, "s", "target/x", myUID, myGID)
		t.Must(err, "SymlinkAt(s)")
		t.ObsStat("SymlinkAt inode", &in.Stat)
		if in.Stat.Mode&linux.S_IFMT != linux.S_IFLNK || in.Stat.Size != 8 {
			t.Errorf("SymlinkAt inode: mode %#o size %d; want symlink of size 8", in.Stat.Mode, in.Stat.Size)
		}
		t.CheckStatMatchesHost("SymlinkAt stat", &in.Stat, "s")
		if target, err := t.View.Readlink("s"); err != nil || target != "target/x" {
			t.Errorf("host readlink: %q %v", target, err)
		}
		got, err := t.FD(in.ControlFD).ReadLinkAt(t.Ctx)
		t.Must(err, "ReadLinkAt(created)")
		t.Obs.Add("ReadLinkAt(s)", got)
		if got != "target/x" {
			t.Errorf("ReadLinkAt: %q", got)
		}
		t.Close(t.FD(in.ControlFD))
		w := t.WalkFD("s")
		got, err = w.ReadLinkAt(t.Ctx)
		t.Must(err, "ReadLinkAt(walked)")
		if got != "target/x" {
			t.Errorf("ReadLinkAt(walked): %q", got)
		}
		t.Close(w)

		// A long (4000-byte) target survives the round trip.
		long := strings.Repeat("0123456789/", 364)[:4000]
		in, err = t.S.RootFD.SymlinkAt(t.Ctx, "long", long, myUID, myGID)
		t.Must(err, "SymlinkAt(long)")
		got, err = t.FD(in.ControlFD).ReadLinkAt(t.Ctx)
		t.Must(err, "ReadLinkAt(long)")
		t.Obs.Addf("ReadLinkAt(long) len", "%d", len(got))
		if got != long {
			t.Errorf("ReadLinkAt(long): %d bytes, want 4000 identical", len(got))
		}
		t.Close(t.FD(in.ControlFD))

		// A host-made symlink (made by Setup: a sealed store gets it through
		// `sealgofer import`) reads the same.
		w = t.WalkFD("hostlink")
		got, err = w.ReadLinkAt(t.Ctx)
		t.Must(err, "ReadLinkAt(hostlink)")
		if got != "../escape" {
			t.Errorf("ReadLinkAt(hostlink): %q", got)
		}
		t.Close(w)

		f := t.WalkFD("f")
		_, err = f.ReadLinkAt(t.Ctx)
		t.Obs.Add("ReadLinkAt(regular file)", errnoName(err))
		if err == nil {
			t.Errorf("ReadLinkAt on a regular file succeeded")
		}
		t.Close(f)
	},
}

var scenarioLink = Scenario{
	Name: "link",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/f", []byte("linked"))
		mkdirHost(t, dir+"/d")
	},
	Run: func(t *T) {
		f := t.WalkFD("f")
		d := t.WalkFD("d")
		in, err := d.LinkAt(t.Ctx, f.ID(), "h")
		t.Must(err, "LinkAt(d/h -> f)")
		t.ObsStat("LinkAt inode", &in.Stat)
		hf, hh := t.HostLstat("f"), t.HostLstat("d/h")
		if hf.Ino != hh.Ino || hh.Nlink != 2 {
			t.Errorf("host: f ino %d, d/h ino %d nlink %d; want same inode, nlink 2", hf.Ino, hh.Ino, hh.Nlink)
		}
		if in.Stat.Nlink != 2 {
			t.Errorf("LinkAt inode nlink %d, want 2", in.Stat.Nlink)
		}
		t.CheckStatMatchesHost("LinkAt stat", &in.Stat, "d/h")
		var st linux.Statx
		t.Must(f.StatTo(t.Ctx, &st), "FStat(f)")
		if st.Nlink != 2 || st.Ino != in.Stat.Ino || st.DevMajor != in.Stat.DevMajor || st.DevMinor != in.Stat.DevMinor {
			t.Errorf("FStat(f) after link: nlink %d ino %d; link inode ino %d (must be the same file)", st.Nlink, st.Ino, in.Stat.Ino)
		}
		// Data written through one name is visible through the other.
		ofd, h := t.Open(t.FD(in.ControlFD), unix.O_WRONLY)
		closeIfValid(h)
		_, err = ofd.Write(t.Ctx, []byte("LINKED"), 0)
		t.Must(err, "PWrite via link")
		t.ExpectBytes("host f after write via link", t.HostRead("f"), []byte("LINKED"))
		t.Close(ofd)
		t.Close(t.FD(in.ControlFD))

		_, err = t.S.RootFD.LinkAt(t.Ctx, d.ID(), "dirlink")
		t.Obs.Add("LinkAt(directory)", errnoName(err))
		if err == nil {
			t.Errorf("hard link to a directory succeeded")
		}
		t.Close(f)
		t.Close(d)
	},
}

var scenarioRename = Scenario{
	Name: "rename",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/a", []byte("A"))
		mkdirHost(t, dir+"/d1")
		mkdirHost(t, dir+"/d2")
		writeHostFile(t, dir+"/d2/existing", withMarker("E: replaced by a rename"))
		mkdirHost(t, dir+"/dirA")
		writeHostFile(t, dir+"/dirA/inner", []byte("I"))
	},
	Run: func(t *T) {
		root := &t.S.RootFD
		fa := t.WalkFD("a")
		oa, h := t.Open(fa, unix.O_RDONLY)
		closeIfValid(h)
		t.ExpectErrno("RenameAt(a -> b)", root.RenameAt(t.Ctx, "a", root.ID(), "b"), 0)
		if t.HostExists("a") || string(t.HostRead("b")) != "A" {
			t.Errorf("host after rename a->b: a exists=%v, b=%q", t.HostExists("a"), t.HostRead("b"))
		}
		var st linux.Statx
		t.ExpectErrno("FStat(control FD of renamed file)", fa.StatTo(t.Ctx, &st), 0)
		t.ExpectBytes("PRead via open FD of renamed file", t.ReadAll(oa, 0, 1), []byte("A"))
		_, err := root.Walk(t.Ctx, "a")
		t.ExpectErrno("Walk(old name)", err, unix.ENOENT)
		t.Close(oa)

		d1 := t.WalkFD("d1")
		d2 := t.WalkFD("d2")
		t.ExpectErrno("RenameAt(b -> d1/c)", root.RenameAt(t.Ctx, "b", d1.ID(), "c"), 0)
		if t.HostExists("b") || string(t.HostRead("d1/c")) != "A" {
			t.Errorf("host after rename b->d1/c wrong")
		}
		t.ExpectErrno("RenameAt(d1/c -> d2/existing) replaces", d1.RenameAt(t.Ctx, "c", d2.ID(), "existing"), 0)
		t.ExpectBytes("host d2/existing after replace", t.HostRead("d2/existing"), []byte("A"))
		if names := hostNames(t, "d1"); len(names) != 0 {
			t.Errorf("host d1 after moving c away: %v", names)
		}
		// The control FD obtained before both renames still refers to the file.
		t.ExpectErrno("FStat(control FD after two renames)", fa.StatTo(t.Ctx, &st), 0)
		if st.Size != 1 {
			t.Errorf("FStat after renames: size %d", st.Size)
		}
		t.Close(fa)

		// Renaming a directory keeps FDs inside it working, and new children
		// created through the old FD appear under the new name.
		dirA := t.WalkFD("dirA")
		t.ExpectErrno("RenameAt(dirA -> dirB)", root.RenameAt(t.Ctx, "dirA", root.ID(), "dirB"), 0)
		inner, err := dirA.Walk(t.Ctx, "inner")
		t.ExpectErrno("Walk(inner) via FD of renamed dir", err, 0)
		if err == nil {
			t.Close(t.FD(inner.ControlFD))
		}
		in, ofd, h2, err := dirA.OpenCreateAt(t.Ctx, "born-after-rename", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		t.ExpectErrno("OpenCreateAt via FD of renamed dir", err, 0)
		if err == nil {
			closeIfValid(h2)
			t.Close(t.FD(ofd))
			t.Close(t.FD(in.ControlFD))
			if !t.HostExists("dirB/born-after-rename") || t.HostExists("dirA") {
				t.Errorf("child created via renamed dir FD not at dirB/born-after-rename on host")
			}
		}
		got := t.WalkPath(root, "dirB", "inner")
		t.CheckStatMatchesHost("Walk(dirB/inner)", &got.Stat, "dirB/inner")
		t.Close(t.FD(got.ControlFD))
		t.Close(dirA)

		t.ExpectErrno("RenameAt(x -> x) no-op", d2.RenameAt(t.Ctx, "existing", d2.ID(), "existing"), 0)
		t.ExpectErrno("RenameAt(missing)", root.RenameAt(t.Ctx, "missing", root.ID(), "z"), unix.ENOENT)
		t.Close(d1)
		t.Close(d2)
	},
}

var scenarioUnlink = Scenario{
	Name: "unlink",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/f", withMarker("f: unlinked"))
		writeHostFile(t, dir+"/g", []byte("g"))
		writeHostFile(t, dir+"/open", []byte("still readable"))
		mkdirHost(t, dir+"/e")
		mkdirHost(t, dir+"/ne")
		writeHostFile(t, dir+"/ne/x", []byte("x"))
	},
	Run: func(t *T) {
		root := &t.S.RootFD
		t.ExpectErrno("UnlinkAt(f)", root.UnlinkAt(t.Ctx, "f", 0), 0)
		if t.HostExists("f") {
			t.Errorf("f still on host after UnlinkAt")
		}
		t.ExpectErrno("UnlinkAt(e, AT_REMOVEDIR)", root.UnlinkAt(t.Ctx, "e", unix.AT_REMOVEDIR), 0)
		if t.HostExists("e") {
			t.Errorf("e still on host after rmdir")
		}
		t.ExpectErrno("UnlinkAt(ne, AT_REMOVEDIR)", root.UnlinkAt(t.Ctx, "ne", unix.AT_REMOVEDIR), unix.ENOTEMPTY)
		t.ExpectErrno("UnlinkAt(ne) without AT_REMOVEDIR", root.UnlinkAt(t.Ctx, "ne", 0), unix.EISDIR)
		t.ExpectErrno("UnlinkAt(g, AT_REMOVEDIR)", root.UnlinkAt(t.Ctx, "g", unix.AT_REMOVEDIR), unix.ENOTDIR)
		t.ExpectErrno("UnlinkAt(missing)", root.UnlinkAt(t.Ctx, "missing", 0), unix.ENOENT)
		if !t.HostExists("ne/x") || !t.HostExists("g") {
			t.Errorf("failed unlinks changed the host")
		}
		ne := t.WalkFD("ne")
		t.ExpectErrno("UnlinkAt(ne/x)", ne.UnlinkAt(t.Ctx, "x", 0), 0)
		t.Close(ne)
		t.ExpectErrno("UnlinkAt(ne, AT_REMOVEDIR) once empty", root.UnlinkAt(t.Ctx, "ne", unix.AT_REMOVEDIR), 0)

		// An open file stays readable after unlink (POSIX), with nlink 0.
		cfd := t.WalkFD("open")
		ofd, h := t.Open(cfd, unix.O_RDONLY)
		closeIfValid(h)
		t.ExpectErrno("UnlinkAt(open)", root.UnlinkAt(t.Ctx, "open", 0), 0)
		t.ExpectBytes("PRead of unlinked open file", t.ReadAll(ofd, 0, 64), []byte("still readable"))
		var st linux.Statx
		err := ofd.StatTo(t.Ctx, &st)
		t.Obs.Addf("FStat(unlinked open FD)", "%s nlink=%d", errnoName(err), st.Nlink)
		if err == nil && st.Nlink != 0 {
			t.Errorf("FStat of unlinked file: nlink %d, want 0", st.Nlink)
		}
		t.Close(ofd)
		t.Close(cfd)
		names := hostNames(t, ".")
		t.Obs.Add("host root after unlinks", strings.Join(names, ","))
		if len(names) != 1 || names[0] != "g" {
			t.Errorf("host root after unlinks: %v, want [g]", names)
		}
	},
}

// direntNames turns a name->dirent map into a set.
func direntNames(m map[string]lisafs.Dirent64) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}
