package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

// deleted-dir: FDs of a directory removed through another name. lisafs
// servers must not walk or create inside it (it could be replaced by a
// malicious symlink); the sentry relies on ENOENT-like answers.
var scenarioDeletedDir = Scenario{
	Name: "deleted-dir",
	Setup: func(t *T, dir string) {
		mkdirHost(t, dir+"/d")
	},
	Run: func(t *T) {
		d := t.WalkFD("d")
		od, h := t.Open(d, unix.O_RDONLY)
		closeIfValid(h)
		t.Must(t.S.RootFD.UnlinkAt(t.Ctx, "d", unix.AT_REMOVEDIR), "rmdir d")
		status, inodes, err := d.WalkMultiple(t.Ctx, []string{"x"})
		t.Obs.Addf("Walk in deleted dir", "%s status=%d n=%d", errnoName(err), status, len(inodes))
		if err == nil && (status == lisafs.WalkSuccess || len(inodes) > 0) {
			t.Errorf("Walk inside a deleted directory succeeded")
		}
		_, _, h, err = d.OpenCreateAt(t.Ctx, "x", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		closeIfValid(h)
		t.Obs.Add("OpenCreateAt in deleted dir", errnoName(err))
		if err == nil {
			t.Errorf("OpenCreateAt inside a deleted directory succeeded")
		}
		_, err = d.MkdirAt(t.Ctx, "y", 0755, myUID, myGID)
		t.Obs.Add("MkdirAt in deleted dir", errnoName(err))
		if err == nil {
			t.Errorf("MkdirAt inside a deleted directory succeeded")
		}
		var st linux.Statx
		err = d.StatTo(t.Ctx, &st)
		t.Obs.Addf("FStat(deleted dir)", "%s nlink=%d", errnoName(err), st.Nlink)
		_, err = od.Getdents64(t.Ctx, -4096)
		t.Obs.Add("Getdents64(deleted dir)", errnoName(err))
		if t.HostExists("d") {
			t.Errorf("d exists on the host again")
		}
		t.Close(od)
		t.Close(d)
	},
}

// deep-walk: one Walk RPC of 64 components, and WalkStat of the same path.
var scenarioDeepWalk = Scenario{
	Name: "deep-walk",
	Setup: func(t *T, dir string) {
		var parts []string
		for i := 0; i < 64; i++ {
			parts = append(parts, fmt.Sprintf("level%02d", i))
		}
		mkdirHost(t, dir+"/"+strings.Join(parts, "/"))
		writeHostFile(t, dir+"/"+strings.Join(parts, "/")+"/leaf", []byte("deep"))
	},
	Run: func(t *T) {
		var names []string
		for i := 0; i < 64; i++ {
			names = append(names, fmt.Sprintf("level%02d", i))
		}
		names = append(names, "leaf")
		status, inodes, err := t.S.RootFD.WalkMultiple(t.Ctx, names)
		t.Must(err, "Walk(65 components)")
		t.Obs.Addf("Walk(65 components)", "status=%d n=%d", status, len(inodes))
		if status != lisafs.WalkSuccess || len(inodes) != 65 {
			t.Errorf("Walk(65 components): status %d, %d inodes", status, len(inodes))
		} else {
			t.CheckStatMatchesHost("leaf", &inodes[64].Stat, strings.Join(names, "/"))
		}
		for _, in := range inodes {
			t.Close(t.FD(in.ControlFD))
		}
		stats, err := t.S.RootFD.WalkStat(t.Ctx, names)
		t.Must(err, "WalkStat(65 components)")
		t.Obs.Addf("WalkStat(65 components) n", "%d", len(stats))
		if len(stats) != 65 {
			t.Errorf("WalkStat(65 components): %d stats", len(stats))
		}
	},
}

// many-fds: the sentry keeps a control FD per cached dentry plus one per open
// file; 3000 live FDs on one connection must work, and a batch Close of them
// all must release them.
var scenarioManyFDs = Scenario{
	Name: "many-fds",
	Setup: func(t *T, dir string) {
		for i := 0; i < 1500; i++ {
			if err := os.WriteFile(fmt.Sprintf("%s/m%04d", dir, i), []byte{byte(i)}, 0644); err != nil {
				t.Fatalf("%v", err)
			}
		}
	},
	Run: func(t *T) {
		var ids []lisafs.FDID
		failed := 0
		var firstErr error
		for i := 0; i < 1500; i++ {
			in, err := t.S.RootFD.Walk(t.Ctx, fmt.Sprintf("m%04d", i))
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("walk #%d: %s", i, errnoName(err))
				}
				continue
			}
			ids = append(ids, in.ControlFD)
			id, h, err := t.FD(in.ControlFD).OpenAt(t.Ctx, unix.O_RDONLY)
			closeIfValid(h)
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("open #%d: %s", i, errnoName(err))
				}
				continue
			}
			ids = append(ids, id)
		}
		t.Obs.Addf("live FDs", "%d (failed %d)", len(ids), failed)
		if failed > 0 {
			t.Errorf("%d of 3000 walks/opens failed; first: %v", failed, firstErr)
		}
		// Every open FD still reads its own file.
		for i := 1; i < len(ids); i += 2 * 150 {
			b := t.ReadAll(t.FD(ids[i]), 0, 1)
			if len(b) != 1 || b[0] != byte(i/2) {
				t.Errorf("open FD #%d reads %v, want [%d]", i/2, b, byte(i/2))
			}
		}
		// Close them all through the client's batching (100 per Close RPC).
		for _, id := range ids {
			t.S.Client.CloseFD(t.Ctx, id, false)
		}
		t.S.Client.CloseFD(t.Ctx, ids[0], true) // flush the rest (a double close is harmless)
		var st linux.Statx
		t.ExpectErrno("FStat(closed FD)", t.FD(ids[len(ids)-1]).StatTo(t.Ctx, &st), unix.EBADF)
		t.ExpectErrno("FStat(root) afterwards", t.S.RootFD.StatTo(t.Ctx, &st), 0)
	},
}
