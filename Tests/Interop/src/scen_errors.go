package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

func populateErrors(t *T, dir string) {
	writeHostFile(t, dir+"/f", []byte("f"))
	mkdirHost(t, dir+"/d")
	mkdirHost(t, dir+"/full")
	writeHostFile(t, dir+"/full/x", withMarker("x"))
	mkdirHost(t, dir+"/full2")
	writeHostFile(t, dir+"/full2/y", withMarker("y"))
	if err := os.Symlink("f", dir+"/s"); err != nil {
		t.Fatalf("%v", err)
	}
}

// hostUnchanged checks the host tree still has exactly the populateErrors layout.
func hostUnchanged(t *T) {
	got := strings.Join(hostNames(t, "."), ",")
	t.Obs.Add("host root afterwards", got)
	if got != "d,f,full,full2,s" {
		t.Errorf("host root changed: %s", got)
	}
}

var scenarioErrENOENT = Scenario{
	Name:  "err-enoent",
	Setup: populateErrors,
	Run: func(t *T) {
		root := &t.S.RootFD
		_, err := root.Walk(t.Ctx, "missing")
		t.ExpectErrno("Walk(missing)", err, unix.ENOENT)
		t.ExpectErrno("UnlinkAt(missing)", root.UnlinkAt(t.Ctx, "missing", 0), unix.ENOENT)
		t.ExpectErrno("UnlinkAt(missing, AT_REMOVEDIR)", root.UnlinkAt(t.Ctx, "missing", unix.AT_REMOVEDIR), unix.ENOENT)
		t.ExpectErrno("RenameAt(missing)", root.RenameAt(t.Ctx, "missing", root.ID(), "z"), unix.ENOENT)
		stats, err := root.WalkStat(t.Ctx, []string{"missing"})
		t.ExpectErrno("WalkStat(missing)", err, 0)
		t.Obs.Addf("WalkStat(missing) n", "%d", len(stats))
		if len(stats) != 0 {
			t.Errorf("WalkStat(missing) returned %d stats", len(stats))
		}
		hostUnchanged(t)
	},
}

var scenarioErrEEXIST = Scenario{
	Name:  "err-eexist",
	Setup: populateErrors,
	Run: func(t *T) {
		root := &t.S.RootFD
		_, _, _, err := root.OpenCreateAt(t.Ctx, "f", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		t.ExpectErrno("OpenCreateAt(existing file)", err, unix.EEXIST)
		_, _, _, err = root.OpenCreateAt(t.Ctx, "s", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		t.ExpectErrno("OpenCreateAt(existing symlink)", err, unix.EEXIST)
		_, err = root.MkdirAt(t.Ctx, "d", 0755, myUID, myGID)
		t.ExpectErrno("MkdirAt(existing)", err, unix.EEXIST)
		_, err = root.MkdirAt(t.Ctx, "f", 0755, myUID, myGID)
		t.ExpectErrno("MkdirAt(over a file)", err, unix.EEXIST)
		_, err = root.SymlinkAt(t.Ctx, "f", "x", myUID, myGID)
		t.ExpectErrno("SymlinkAt(existing)", err, unix.EEXIST)
		f := t.WalkFD("f")
		_, err = root.LinkAt(t.Ctx, f.ID(), "d")
		t.ExpectErrno("LinkAt(onto existing)", err, unix.EEXIST)
		t.Close(f)
		_, err = root.MknodAt(t.Ctx, "f", linux.ModeRegular|0644, myUID, myGID, 0, 0)
		t.ExpectErrno("MknodAt(existing)", err, unix.EEXIST)
		if string(t.HostRead("f")) != "f" {
			t.Errorf("existing file f was modified")
		}
		hostUnchanged(t)
	},
}

var scenarioErrENOTEMPTY = Scenario{
	Name:  "err-enotempty",
	Setup: populateErrors,
	Run: func(t *T) {
		root := &t.S.RootFD
		t.ExpectErrno("UnlinkAt(non-empty dir, AT_REMOVEDIR)", root.UnlinkAt(t.Ctx, "full", unix.AT_REMOVEDIR), unix.ENOTEMPTY)
		err := root.RenameAt(t.Ctx, "full", root.ID(), "full2")
		t.Obs.Add("RenameAt(dir over non-empty dir)", errnoName(err))
		if err != unix.ENOTEMPTY && err != unix.EEXIST {
			t.Errorf("RenameAt(dir over non-empty dir): %s, want ENOTEMPTY or EEXIST", errnoName(err))
		}
		t.ExpectErrno("RenameAt(dir over a file)", root.RenameAt(t.Ctx, "d", root.ID(), "f"), unix.ENOTDIR)
		t.ExpectErrno("RenameAt(file over a dir)", root.RenameAt(t.Ctx, "f", root.ID(), "d"), unix.EISDIR)
		full := t.WalkFD("full")
		t.ExpectErrno("RenameAt(dir into itself)", root.RenameAt(t.Ctx, "full", full.ID(), "sub"), unix.EINVAL)
		t.Close(full)
		if !t.HostExists("full/x") || !t.HostExists("full2/y") {
			t.Errorf("host directories changed")
		}
		hostUnchanged(t)
	},
}

var scenarioErrENAMETOOLONG = Scenario{
	Name:  "err-enametoolong",
	Setup: populateErrors,
	Run: func(t *T) {
		root := &t.S.RootFD
		long := strings.Repeat("n", 256)
		_, _, _, err := root.OpenCreateAt(t.Ctx, long, unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		t.ExpectErrno("OpenCreateAt(256-byte name)", err, unix.ENAMETOOLONG)
		_, err = root.MkdirAt(t.Ctx, long, 0755, myUID, myGID)
		t.ExpectErrno("MkdirAt(256-byte name)", err, unix.ENAMETOOLONG)
		_, err = root.SymlinkAt(t.Ctx, long, "x", myUID, myGID)
		t.ExpectErrno("SymlinkAt(256-byte name)", err, unix.ENAMETOOLONG)
		_, err = root.Walk(t.Ctx, long)
		t.Obs.Add("Walk(256-byte name)", errnoName(err))
		if err != unix.ENAMETOOLONG && err != unix.ENOENT {
			t.Errorf("Walk(256-byte name): %s, want ENAMETOOLONG (or ENOENT)", errnoName(err))
		}
		t.ExpectErrno("RenameAt(to 256-byte name)", root.RenameAt(t.Ctx, "f", root.ID(), long), unix.ENAMETOOLONG)
		// 255 bytes is the limit and must work.
		ok := strings.Repeat("k", 255)
		in, err := root.MkdirAt(t.Ctx, ok, 0755, myUID, myGID)
		t.ExpectErrno("MkdirAt(255-byte name)", err, 0)
		if err == nil {
			t.Close(t.FD(in.ControlFD))
			t.ExpectErrno("UnlinkAt(255-byte name)", root.UnlinkAt(t.Ctx, ok, unix.AT_REMOVEDIR), 0)
		}
		hostUnchanged(t)
	},
}

// err-einval: names that are not single path components must be refused;
// accepting them would let a client escape the mount (".." and "a/b").
var scenarioErrEINVAL = Scenario{
	Name:  "err-einval-names",
	Setup: populateErrors,
	Run: func(t *T) {
		root := &t.S.RootFD
		for _, name := range []string{"..", ".", "d/../..", "full/x", ""} {
			_, err := root.Walk(t.Ctx, name)
			t.ExpectErrno("Walk("+name+")", err, unix.EINVAL)
			_, err = root.MkdirAt(t.Ctx, name, 0755, myUID, myGID)
			t.ExpectErrno("MkdirAt("+name+")", err, unix.EINVAL)
			_, _, _, err = root.OpenCreateAt(t.Ctx, name, unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
			t.ExpectErrno("OpenCreateAt("+name+")", err, unix.EINVAL)
			t.ExpectErrno("UnlinkAt("+name+")", root.UnlinkAt(t.Ctx, name, 0), unix.EINVAL)
		}
		_, err := root.WalkStat(t.Ctx, []string{"d", ".."})
		t.ExpectErrno("WalkStat[d ..]", err, unix.EINVAL)
		t.ExpectErrno("RenameAt(f -> ../escaped)", root.RenameAt(t.Ctx, "f", root.ID(), "../escaped"), unix.EINVAL)
		escapes := []string{t.S.Dir + "/../escaped"}
		if t.Sealed() {
			// The served root is S/data: its parent holds the keyring.
			escapes = append(escapes, t.S.Sealed.store+"/escaped", t.S.Sealed.store+"/../escaped")
		}
		for _, p := range escapes {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("a file escaped the mount: %s", p)
			}
		}
		hostUnchanged(t)
	},
}

var scenarioErrEBADF = Scenario{
	Name:  "err-ebadf",
	Setup: populateErrors,
	Run: func(t *T) {
		f := t.WalkFD("f")
		ofd, h := t.Open(f, unix.O_RDWR)
		closeIfValid(h)
		staleCtl, staleOpen := f, ofd
		t.Close(ofd)
		t.Close(f)
		var st linux.Statx
		t.ExpectErrno("FStat(closed control FDID)", staleCtl.StatTo(t.Ctx, &st), unix.EBADF)
		t.ExpectErrno("FStat(closed open FDID)", staleOpen.StatTo(t.Ctx, &st), unix.EBADF)
		_, err := staleOpen.Read(t.Ctx, make([]byte, 1), 0)
		t.ExpectErrno("PRead(closed FDID)", err, unix.EBADF)
		_, err = staleOpen.Write(t.Ctx, []byte("x"), 0)
		t.ExpectErrno("PWrite(closed FDID)", err, unix.EBADF)
		_, err = staleCtl.Walk(t.Ctx, "x")
		t.ExpectErrno("Walk(closed FDID)", err, unix.EBADF)
		never := t.FD(lisafs.FDID(0x7ffffff0))
		t.ExpectErrno("FStat(never-issued FDID)", never.StatTo(t.Ctx, &st), unix.EBADF)
		_, _, err = never.OpenAt(t.Ctx, unix.O_RDONLY)
		t.ExpectErrno("OpenAt(never-issued FDID)", err, unix.EBADF)
		t.ExpectErrno("UnlinkAt(dir=never-issued FDID)", never.UnlinkAt(t.Ctx, "f", 0), unix.EBADF)
		t.ExpectErrno("RenameAt(newdir=never-issued FDID)", t.S.RootFD.RenameAt(t.Ctx, "f", never.ID(), "g"), unix.EBADF)
		// FDID 0 is the invalid FDID.
		zero := t.FD(lisafs.InvalidFDID)
		t.ExpectErrno("FStat(FDID 0)", zero.StatTo(t.Ctx, &st), unix.EBADF)
		// Closing an already closed FDID must not break the connection.
		t.S.Client.CloseFD(t.Ctx, staleCtl.ID(), true)
		t.ExpectErrno("FStat(root) after double close", t.S.RootFD.StatTo(t.Ctx, &st), 0)
		// Wrong FD kinds: a control FDID where an open FDID is needed and back.
		d := t.WalkFD("d")
		_, err = d.Getdents64(t.Ctx, 4096)
		t.Obs.Add("Getdents64(control FDID)", errnoName(err))
		if err == nil {
			t.Errorf("Getdents64 with a control FDID succeeded")
		}
		od, h := t.Open(d, unix.O_RDONLY)
		closeIfValid(h)
		_, err = od.Walk(t.Ctx, "x")
		t.Obs.Add("Walk(open FDID)", errnoName(err))
		if err == nil {
			t.Errorf("Walk from an open FDID succeeded")
		}
		t.Close(od)
		t.Close(d)
		// ENOTDIR and EISDIR round out the FD-type errors.
		f2 := t.WalkFD("f")
		_, _, _, err = f2.OpenCreateAt(t.Ctx, "x", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		t.ExpectErrno("OpenCreateAt(in a file)", err, unix.ENOTDIR)
		t.Close(f2)
		d2 := t.WalkFD("d")
		_, _, err = d2.OpenAt(t.Ctx, unix.O_RDWR)
		t.ExpectErrno("OpenAt(dir, O_RDWR)", err, unix.EISDIR)
		t.Close(d2)
		hostUnchanged(t)
	},
}

var scenarioReadonly = Scenario{
	Name:     "err-erofs",
	Readonly: true,
	Setup:    populateErrors,
	Run: func(t *T) {
		root := &t.S.RootFD
		// Reads still work.
		f := t.WalkFD("f")
		ro, h := t.Open(f, unix.O_RDONLY)
		closeIfValid(h)
		t.ExpectBytes("PRead on read-only mount", t.ReadAll(ro, 0, 10), []byte("f"))
		t.Close(ro)
		var st linux.Statx
		t.ExpectErrno("FStat on read-only mount", f.StatTo(t.Ctx, &st), 0)

		_, _, err := f.OpenAt(t.Ctx, unix.O_RDWR)
		t.ExpectErrno("OpenAt(O_RDWR)", err, unix.EROFS)
		_, _, err = f.OpenAt(t.Ctx, unix.O_WRONLY)
		t.ExpectErrno("OpenAt(O_WRONLY)", err, unix.EROFS)
		_, _, err = f.OpenAt(t.Ctx, unix.O_RDONLY|unix.O_TRUNC)
		t.ExpectErrno("OpenAt(O_RDONLY|O_TRUNC)", err, unix.EROFS)
		_, _, _, err = root.OpenCreateAt(t.Ctx, "new", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		t.ExpectErrno("OpenCreateAt", err, unix.EROFS)
		_, err = root.MkdirAt(t.Ctx, "nd", 0755, myUID, myGID)
		t.ExpectErrno("MkdirAt", err, unix.EROFS)
		_, err = root.MknodAt(t.Ctx, "nn", linux.ModeRegular|0644, myUID, myGID, 0, 0)
		t.ExpectErrno("MknodAt", err, unix.EROFS)
		_, err = root.SymlinkAt(t.Ctx, "ns", "f", myUID, myGID)
		t.ExpectErrno("SymlinkAt", err, unix.EROFS)
		_, err = root.LinkAt(t.Ctx, f.ID(), "nl")
		t.ExpectErrno("LinkAt", err, unix.EROFS)
		t.ExpectErrno("UnlinkAt", root.UnlinkAt(t.Ctx, "f", 0), unix.EROFS)
		t.ExpectErrno("RenameAt", root.RenameAt(t.Ctx, "f", root.ID(), "g"), unix.EROFS)
		_, _, err = f.SetStat(t.Ctx, &linux.Statx{Mask: linux.STATX_SIZE, Size: 0})
		t.ExpectErrno("SetStat(size)", err, unix.EROFS)
		_, _, err = f.SetStat(t.Ctx, &linux.Statx{Mask: linux.STATX_MODE, Mode: 0600})
		t.ExpectErrno("SetStat(mode)", err, unix.EROFS)
		if t.Supported(lisafs.FSetXattr) {
			t.ExpectErrno("FSetXattr", f.SetXattr(t.Ctx, "user.x", "y", 0), unix.EROFS)
		} else {
			t.Obs.Skip("FSetXattr", fmt.Sprintf("%s does not advertise FSetXattr", t.S.Kind))
		}
		t.Close(f)
		if st := t.HostLstat("f"); st.Size != 1 || st.Mode != unix.S_IFREG|0644 {
			t.Errorf("host file changed on a read-only mount: size %d mode %#o", st.Size, st.Mode)
		}
		hostUnchanged(t)
	},
}
