package main

import (
	"errors"
	"io"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

var scenarioCreate = Scenario{
	Name: "create",
	Setup: func(t *T, dir string) {
		mkdirHost(t, dir+"/d")
	},
	Run: func(t *T) {
		in, ofdID, hostFD, err := t.S.RootFD.OpenCreateAt(t.Ctx, "new", unix.O_RDWR, linux.ModeRegular|0640, myUID, myGID)
		t.Must(err, "OpenCreateAt(new)")
		if hostFD >= 0 {
			unix.Close(hostFD)
		}
		if !in.ControlFD.Ok() || !ofdID.Ok() {
			t.Fatalf("OpenCreateAt returned invalid FDIDs control=%d open=%d", in.ControlFD, ofdID)
		}
		t.ObsStat("created inode", &in.Stat)
		if in.Stat.Mode != linux.S_IFREG|0640 || in.Stat.Size != 0 || in.Stat.Nlink != 1 {
			t.Errorf("created inode: mode %#o size %d nlink %d; want %#o 0 1", in.Stat.Mode, in.Stat.Size, in.Stat.Nlink, linux.S_IFREG|0640)
		}
		t.CheckStatMatchesHost("OpenCreateAt stat", &in.Stat, "new")
		if st := t.HostLstat("new"); st.Mode != unix.S_IFREG|0640 || st.Uid != uint32(myUID) {
			t.Errorf("host file: mode %#o uid %d; want %#o %d", st.Mode, st.Uid, unix.S_IFREG|0640, myUID)
		}
		ofd := t.FD(ofdID)
		n, err := ofd.Write(t.Ctx, []byte("abc"), 0)
		t.Must(err, "PWrite on created FD")
		if n != 3 {
			t.Errorf("PWrite returned %d, want 3", n)
		}
		t.ExpectBytes("host content after PWrite", t.HostRead("new"), []byte("abc"))
		var st linux.Statx
		t.Must(t.FD(in.ControlFD).StatTo(t.Ctx, &st), "FStat(new)")
		t.CheckStatMatchesHost("FStat(new) after write", &st, "new")
		// Closing (a sealed store commits then) is not a modification: the
		// mtime the client saw stays.
		time.Sleep(30 * time.Millisecond)
		t.Close(ofd)
		var after linux.Statx
		t.Must(t.FD(in.ControlFD).StatTo(t.Ctx, &after), "FStat(new) after close")
		if after.Mtime != st.Mtime || after.Size != 3 {
			t.Errorf("FStat(new) after close: mtime %d.%09d size %d; before close %d.%09d size 3",
				after.Mtime.Sec, after.Mtime.Nsec, after.Size, st.Mtime.Sec, st.Mtime.Nsec)
		}
		t.Close(t.FD(in.ControlFD))

		// Create inside a subdirectory, write-only.
		d := t.WalkFD("d")
		in, ofdID, hostFD, err = d.OpenCreateAt(t.Ctx, "sub", unix.O_WRONLY, linux.ModeRegular|0600, myUID, myGID)
		t.Must(err, "OpenCreateAt(d/sub)")
		if hostFD >= 0 {
			unix.Close(hostFD)
		}
		t.CheckStatMatchesHost("OpenCreateAt(d/sub) stat", &in.Stat, "d/sub")
		_, err = t.FD(ofdID).Read(t.Ctx, make([]byte, 1), 0)
		t.ExpectErrno("PRead on write-only created FD", err, unix.EBADF)
		t.Close(t.FD(ofdID))
		t.Close(t.FD(in.ControlFD))
		t.Close(d)

		// The new file is visible to a fresh walk.
		got := t.WalkPath(&t.S.RootFD, "d", "sub")
		t.CheckStatMatchesHost("Walk(d/sub)", &got.Stat, "d/sub")
		t.Close(t.FD(got.ControlFD))
	},
}

// accessMode returns the O_ACCMODE bits of a host FD.
func accessMode(t *T, fd int) int {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatalf("fcntl(F_GETFL) on donated FD: %v", err)
	}
	return fl & unix.O_ACCMODE
}

var scenarioDonatedFD = Scenario{
	Name: "donated-fd",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/data", pattern(8192, 1))
	},
	Run: func(t *T) {
		cfd := t.WalkFD("data")
		host := t.HostLstat("data")

		ro, roHost := t.Open(cfd, unix.O_RDONLY)
		t.Obs.Addf("OpenAt(RDONLY) donates", "%v", roHost >= 0)
		if roHost >= 0 {
			var st unix.Stat_t
			t.Must(unix.Fstat(roHost, &st), "fstat(donated)")
			if t.Sealed() {
				// SealedProvider donates the plaintext scratch, never the
				// ciphertext: a different inode, the plaintext size.
				if st.Ino == host.Ino && st.Dev == host.Dev {
					t.Errorf("sealed: donated FD is the ciphertext file itself")
				}
				if st.Size != 8192 {
					t.Errorf("sealed: donated FD has size %d, want the plaintext size 8192", st.Size)
				}
			} else if st.Ino != host.Ino || st.Dev != host.Dev {
				t.Errorf("donated FD is not the file: ino %d dev %d, host %d %d", st.Ino, st.Dev, host.Ino, host.Dev)
			}
			if m := accessMode(t, roHost); m != unix.O_RDONLY {
				t.Errorf("donated FD for an O_RDONLY open has access mode %d (must not grant write)", m)
			}
			buf := make([]byte, 8192)
			n, err := unix.Pread(roHost, buf, 0)
			t.Must(err, "pread(donated RDONLY)")
			t.ExpectBytes("pread via donated RDONLY FD", buf[:n], pattern(8192, 1))
			_, err = unix.Pwrite(roHost, []byte("x"), 0)
			t.ExpectErrno("pwrite via donated RDONLY FD", err, unix.EBADF)
			unix.Close(roHost)
		} else {
			t.Note("OpenAt(O_RDONLY) on a regular file donated no host FD")
		}
		t.Close(ro)

		rw, rwHost := t.Open(cfd, unix.O_RDWR)
		t.Obs.Addf("OpenAt(RDWR) donates", "%v", rwHost >= 0)
		if rwHost >= 0 {
			if m := accessMode(t, rwHost); m != unix.O_RDWR {
				t.Errorf("donated FD for an O_RDWR open has access mode %d", m)
			}
			_, err := unix.Pwrite(rwHost, []byte("XYZ"), 100)
			t.Must(err, "pwrite(donated RDWR)")
			want := pattern(8192, 1)
			copy(want[100:], "XYZ")
			t.ExpectBytes("host content after write via donated FD", t.HostRead("data"), want)
			t.ExpectBytes("PRead after write via donated FD", t.ReadAll(rw, 0, 8192), want)
			// And the other way round: a host write is visible through the donated FD.
			t.HostWrite("data", []byte("rewritten"))
			buf := make([]byte, 64)
			n, err := unix.Pread(rwHost, buf, 0)
			t.Must(err, "pread(donated RDWR)")
			t.ExpectBytes("pread via donated FD after host rewrite", buf[:n], []byte("rewritten"))
			unix.Close(rwHost)
		} else {
			t.Note("OpenAt(O_RDWR) on a regular file donated no host FD")
		}
		t.Close(rw)

		in, ofd, crHost, err := t.S.RootFD.OpenCreateAt(t.Ctx, "created", unix.O_WRONLY, linux.ModeRegular|0644, myUID, myGID)
		t.Must(err, "OpenCreateAt(created)")
		t.Obs.Addf("OpenCreateAt(WRONLY) donates", "%v", crHost >= 0)
		if crHost >= 0 {
			if m := accessMode(t, crHost); m != unix.O_WRONLY {
				t.Errorf("donated FD for an O_WRONLY create has access mode %d", m)
			}
			_, err := unix.Pwrite(crHost, []byte("via donated"), 0)
			t.Must(err, "pwrite(donated created)")
			t.ExpectBytes("host content of created file", t.HostRead("created"), []byte("via donated"))
			var st linux.Statx
			t.Must(t.FD(in.ControlFD).StatTo(t.Ctx, &st), "FStat(created)")
			if st.Size != 11 {
				t.Errorf("FStat after donated write: size %d, want 11", st.Size)
			}
			unix.Close(crHost)
		}
		t.Close(t.FD(ofd))
		t.Close(t.FD(in.ControlFD))
		t.Close(cfd)
	},
}

var scenarioPReadPWrite = Scenario{
	Name: "pread-pwrite",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/existing", pattern(1000, 2))
		writeHostFile(t, dir+"/untouched", withMarker("imported and never opened"))
	},
	Run: func(t *T) {
		const size = 3 << 20 // larger than one message: exercises client chunking
		in, ofdID, hostFD, err := t.S.RootFD.OpenCreateAt(t.Ctx, "big", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		t.Must(err, "OpenCreateAt(big)")
		if hostFD >= 0 {
			unix.Close(hostFD)
		}
		ofd := t.FD(ofdID)
		data := pattern(size, 3)
		n, err := ofd.Write(t.Ctx, data, 0)
		t.Must(err, "PWrite 3 MiB")
		t.Obs.Addf("PWrite 3MiB", "%d", n)
		if n != size {
			t.Errorf("PWrite 3 MiB wrote %d", n)
		}
		t.ExpectBytes("host content after 3 MiB PWrite", t.HostRead("big"), data)
		t.ExpectBytes("PRead 3 MiB", t.ReadAll(ofd, 0, size), data)
		t.ExpectBytes("PRead straddling EOF", t.ReadAll(ofd, size-10, 100), data[size-10:])
		buf := make([]byte, 10)
		got, err := ofd.Read(t.Ctx, buf, size)
		t.Obs.Addf("PRead at EOF", "n=%d eof=%v", got, errors.Is(err, io.EOF))
		if got != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("PRead at EOF: n=%d err=%v; want 0, EOF", got, err)
		}
		// A write past EOF leaves a hole of zeroes.
		_, err = ofd.Write(t.Ctx, []byte("tail"), 5<<20)
		t.Must(err, "PWrite at 5 MiB")
		if st := t.HostLstat("big"); st.Size != 5<<20+4 {
			t.Errorf("host size after sparse write %d, want %d", st.Size, 5<<20+4)
		}
		t.ExpectBytes("PRead of the hole", t.ReadAll(ofd, 4<<20, 16), make([]byte, 16))
		t.ExpectBytes("PRead of the tail", t.ReadAll(ofd, 5<<20, 4), []byte("tail"))
		t.Close(ofd)
		t.Close(t.FD(in.ControlFD))

		cfd := t.WalkFD("existing")
		ro, roHost := t.Open(cfd, unix.O_RDONLY)
		closeIfValid(roHost)
		_, err = ro.Write(t.Ctx, []byte("x"), 0)
		t.ExpectErrno("PWrite on O_RDONLY FD", err, unix.EBADF)
		t.ExpectBytes("PRead of existing file", t.ReadAll(ro, 0, 1000), pattern(1000, 2))
		t.Close(ro)
		wo, woHost := t.Open(cfd, unix.O_WRONLY)
		closeIfValid(woHost)
		_, err = wo.Read(t.Ctx, make([]byte, 4), 0)
		t.ExpectErrno("PRead on O_WRONLY FD", err, unix.EBADF)
		t.Close(wo)
		tr, trHost := t.Open(cfd, unix.O_RDWR|unix.O_TRUNC)
		closeIfValid(trHost)
		if st := t.HostLstat("existing"); st.Size != 0 {
			t.Errorf("OpenAt(O_TRUNC): host size %d, want 0", st.Size)
		}
		t.Close(tr)
		t.Close(cfd)

		// PRead/PWrite with a control FD (not an open FD) is a protocol error.
		_, err = cfd.Read(t.Ctx, make([]byte, 4), 0)
		t.Obs.Add("PRead on closed control FD", errnoName(err))
		root := t.WalkFD("existing")
		_, err = root.Read(t.Ctx, make([]byte, 4), 0)
		t.Obs.Add("PRead with a control FDID", errnoName(err))
		if err == nil {
			t.Errorf("PRead with a control FDID succeeded")
		}
		t.Close(root)
	},
}

var scenarioAllocate = Scenario{
	Name: "allocate",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/f", []byte("0123456789"))
	},
	Run: func(t *T) {
		cfd := t.WalkFD("f")
		rw, h := t.Open(cfd, unix.O_RDWR)
		closeIfValid(h)
		err := rw.Allocate(t.Ctx, 0, 0, 1<<20)
		t.ExpectErrno("FAllocate(0, 1MiB)", err, 0)
		if st := t.HostLstat("f"); st.Size != 1<<20 || st.Blocks*512 < 1<<20 {
			t.Errorf("host after FAllocate: size %d blocks %d; want size 1MiB, fully allocated", st.Size, st.Blocks)
		}
		t.ExpectBytes("data kept by FAllocate", t.ReadAll(rw, 0, 10), []byte("0123456789"))
		err = rw.Allocate(t.Ctx, unix.FALLOC_FL_KEEP_SIZE, 1<<20, 1<<20)
		t.ExpectErrno("FAllocate(KEEP_SIZE)", err, 0)
		if st := t.HostLstat("f"); st.Size != 1<<20 {
			t.Errorf("FAllocate(KEEP_SIZE) changed the size to %d", st.Size)
		}
		t.Close(rw)
		ro, h := t.Open(cfd, unix.O_RDONLY)
		closeIfValid(h)
		t.ExpectErrno("FAllocate on O_RDONLY FD", ro.Allocate(t.Ctx, 0, 0, 4096), unix.EBADF)
		t.Close(ro)
		t.Close(cfd)
	},
}

var scenarioFlush = Scenario{
	Name: "flush",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/f", []byte("data"))
	},
	Run: func(t *T) {
		cfd := t.WalkFD("f")
		ofd, h := t.Open(cfd, unix.O_RDWR)
		// The sentry flushes after writing through the donated FD (or PWrite).
		if h >= 0 {
			_, err := unix.Pwrite(h, []byte("more data"), 4)
			t.Must(err, "pwrite(donated)")
		} else {
			_, err := ofd.Write(t.Ctx, []byte("more data"), 4)
			t.Must(err, "PWrite")
		}
		if !t.Supported(lisafs.Flush) {
			t.Obs.SkipAll("does not advertise Flush (MID 20); the sentry then treats Flush as a no-op")
			if err := ofd.Flush(t.Ctx); err != nil {
				t.Errorf("client-side Flush no-op returned %s", errnoName(err))
			}
		} else {
			t.ExpectErrno("Flush(open FD)", ofd.Flush(t.Ctx), 0)
			t.ExpectBytes("host content after Flush", t.HostRead("f"), []byte("datamore data"))
			var st linux.Statx
			t.Must(cfd.StatTo(t.Ctx, &st), "FStat after Flush")
			t.CheckStatMatchesHost("FStat after Flush", &st, "f")
			err := cfd.Flush(t.Ctx)
			t.Obs.Add("Flush(control FD)", errnoName(err))
		}
		closeIfValid(h)
		t.Close(ofd)
		t.Close(cfd)
	},
}

var scenarioFSync = Scenario{
	Name: "fsync",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/a", []byte("a"))
		writeHostFile(t, dir+"/b", []byte("b"))
	},
	Run: func(t *T) {
		a := t.WalkFD("a")
		b := t.WalkFD("b")
		oa, h1 := t.Open(a, unix.O_RDWR)
		ob, h2 := t.Open(b, unix.O_RDONLY)
		closeIfValid(h1)
		closeIfValid(h2)
		_, err := oa.Write(t.Ctx, []byte("synced"), 0)
		t.Must(err, "PWrite")
		t.ExpectErrno("FSync(one FD)", oa.Sync(t.Ctx), 0)
		t.ExpectErrno("FSync(two FDs)", t.S.Client.SyncFDs(t.Ctx, []lisafs.FDID{oa.ID(), ob.ID()}), 0)
		t.ExpectBytes("host content after FSync", t.HostRead("a"), []byte("synced"))
		err = a.Sync(t.Ctx)
		t.Obs.Add("FSync(control FD)", errnoName(err))
		t.Close(oa)
		t.Close(ob)
		t.Close(a)
		t.Close(b)
	},
}

var scenarioSetStat = Scenario{
	Name: "setstat",
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/f", pattern(1000, 4))
		mkdirHost(t, dir+"/d")
	},
	Run: func(t *T) {
		f := t.WalkFD("f")
		setstat := func(label string, st linux.Statx) {
			mask, failErr, err := f.SetStat(t.Ctx, &st)
			t.Obs.Addf(label, "mask=%#x err=%s rpc=%s", mask, errnoName(failErr), errnoName(err))
			if err != nil || mask != 0 {
				t.Errorf("%s: failure mask %#x (%s), rpc error %s", label, mask, errnoName(failErr), errnoName(err))
			}
		}
		setstat("SetStat(size=10)", linux.Statx{Mask: linux.STATX_SIZE, Size: 10})
		if st := t.HostLstat("f"); st.Size != 10 {
			t.Errorf("host size %d after SetStat(size=10)", st.Size)
		}
		t.ExpectBytes("host content after truncate", t.HostRead("f"), pattern(1000, 4)[:10])
		setstat("SetStat(size=5000)", linux.Statx{Mask: linux.STATX_SIZE, Size: 5000})
		if st := t.HostLstat("f"); st.Size != 5000 {
			t.Errorf("host size %d after SetStat(size=5000)", st.Size)
		}
		setstat("SetStat(mode=0600)", linux.Statx{Mask: linux.STATX_MODE, Mode: 0600})
		if st := t.HostLstat("f"); st.Mode != unix.S_IFREG|0600 {
			t.Errorf("host mode %#o after SetStat(mode=0600)", st.Mode)
		}
		atime := linux.StatxTimestamp{Sec: 1000000000, Nsec: 123456789}
		mtime := linux.StatxTimestamp{Sec: 1200000000, Nsec: 500000000}
		setstat("SetStat(atime,mtime)", linux.Statx{Mask: linux.STATX_ATIME | linux.STATX_MTIME, Atime: atime, Mtime: mtime})
		st := t.HostLstat("f")
		if st.Atim.Sec != atime.Sec || st.Atim.Nsec != int64(atime.Nsec) || st.Mtim.Sec != mtime.Sec || st.Mtim.Nsec != int64(mtime.Nsec) {
			t.Errorf("host times after SetStat: atime %d.%09d mtime %d.%09d", st.Atim.Sec, st.Atim.Nsec, st.Mtim.Sec, st.Mtim.Nsec)
		}
		// UTIME_NOW for mtime, UTIME_OMIT for atime (what the sentry sends for touch -m).
		before := time.Now().Add(-2 * time.Second).Unix()
		setstat("SetStat(mtime=NOW, atime=OMIT)", linux.Statx{Mask: linux.STATX_ATIME | linux.STATX_MTIME,
			Atime: linux.StatxTimestamp{Nsec: linux.UTIME_OMIT}, Mtime: linux.StatxTimestamp{Nsec: linux.UTIME_NOW}})
		st = t.HostLstat("f")
		if st.Mtim.Sec < before || st.Mtim.Sec > time.Now().Unix()+2 {
			t.Errorf("UTIME_NOW: host mtime %d is not now", st.Mtim.Sec)
		}
		if st.Atim.Sec != atime.Sec || st.Atim.Nsec != int64(atime.Nsec) {
			t.Errorf("UTIME_OMIT changed atime to %d.%09d", st.Atim.Sec, st.Atim.Nsec)
		}
		// Several fields at once.
		setstat("SetStat(size,mode,mtime)", linux.Statx{Mask: linux.STATX_SIZE | linux.STATX_MODE | linux.STATX_MTIME,
			Size: 7, Mode: 0640, Mtime: mtime})
		st = t.HostLstat("f")
		if st.Size != 7 || st.Mode != unix.S_IFREG|0640 || st.Mtim.Sec != mtime.Sec {
			t.Errorf("combined SetStat: host size %d mode %#o mtime %d", st.Size, st.Mode, st.Mtim.Sec)
		}
		if myUID == 0 {
			setstat("SetStat(uid,gid)", linux.Statx{Mask: linux.STATX_UID | linux.STATX_GID, UID: 1234, GID: 5678})
			if st := t.HostLstat("f"); st.Uid != 1234 || st.Gid != 5678 {
				t.Errorf("host owner %d:%d after SetStat(uid=1234,gid=5678)", st.Uid, st.Gid)
			}
		}
		var got linux.Statx
		t.Must(f.StatTo(t.Ctx, &got), "FStat after SetStat")
		t.CheckStatMatchesHost("FStat after SetStat", &got, "f")
		t.Close(f)

		d := t.WalkFD("d")
		mask, failErr, err := d.SetStat(t.Ctx, &linux.Statx{Mask: linux.STATX_MODE, Mode: 0700})
		t.Obs.Addf("SetStat(dir mode)", "mask=%#x err=%s rpc=%s", mask, errnoName(failErr), errnoName(err))
		if st := t.HostLstat("d"); st.Mode != unix.S_IFDIR|0700 {
			t.Errorf("host dir mode %#o after SetStat(mode=0700)", st.Mode)
		}
		mask, failErr, err = d.SetStat(t.Ctx, &linux.Statx{Mask: linux.STATX_SIZE, Size: 0})
		t.Obs.Addf("SetStat(dir size)", "mask=%#x err=%s rpc=%s", mask, errnoName(failErr), errnoName(err))
		if err == nil && mask == 0 {
			t.Errorf("SetStat(size) on a directory succeeded")
		}
		t.Close(d)
	},
}

func closeIfValid(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
