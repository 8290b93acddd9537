package main

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// large-file: reads and writes an imported multi-chunk file at unaligned
// offsets, across chunk (64 KiB) boundaries, past EOF, after a shrink to the
// middle of a chunk, through two FDs, then once more after close. The sealed
// store serves it with `--donate-limit 1M`, so the file (2 MiB) takes
// SealedProvider's RPC path (DirectFile: chunk-level decryption, dirty chunks
// in memory) instead of a donated scratch.
var scenarioLargeFile = Scenario{
	Name:       "large-file",
	SealedArgs: []string{"--donate-limit", "1M"},
	Setup: func(t *T, dir string) {
		writeHostFile(t, dir+"/big", largeFileContents())
	},
	Run: func(t *T) {
		want := largeFileContents()
		apply := func(data []byte, off int) {
			if end := off + len(data); end > len(want) {
				want = append(want, make([]byte, end-len(want))...)
			}
			copy(want[off:], data)
		}
		cfd := t.WalkFD("big")
		rw, h := t.Open(cfd, unix.O_RDWR)
		t.Obs.Addf("OpenAt(2 MiB file, RDWR) donates", "%v", h >= 0)
		if t.Sealed() {
			t.Obs.Skip("OpenAt(2 MiB file, RDWR) donates", "sealed store served with --donate-limit 1M: larger files go through PRead/PWrite")
			if h >= 0 {
				t.Errorf("sealed: a 2 MiB file was donated despite --donate-limit 1M (RPC path not exercised)")
			}
		}
		closeIfValid(h)
		t.ExpectBytes("PRead of the imported file", t.ReadAll(rw, 0, len(want)+100), want)

		pwrite := func(label string, data []byte, off int) {
			n, err := rw.Write(t.Ctx, data, uint64(off))
			t.Must(err, label)
			if n != uint64(len(data)) {
				t.Errorf("%s: wrote %d of %d", label, n, len(data))
			}
			apply(data, off)
		}
		pwrite("PWrite across a chunk boundary", []byte("CROSSING-THE-BOUNDARY"), 65536-7)
		pwrite("PWrite of 100 KiB, unaligned", pattern(100<<10, 8), 1<<20+333)
		pwrite("PWrite past EOF (hole over chunk boundaries)", []byte("tail after a hole"), len(want)+70000)
		t.ExpectBytes("PRead after writes", t.ReadAll(rw, 0, len(want)+100), want)

		// Shrink into the middle of a chunk, then write beyond the new EOF: the
		// bytes in between must read as zeros, not as the old contents.
		shrink := 1<<20 + 7
		mask, ferr, err := cfd.SetStat(t.Ctx, &linux.Statx{Mask: linux.STATX_SIZE, Size: uint64(shrink)})
		t.Obs.Addf("SetStat(size, mid-chunk)", "mask=%#x err=%s rpc=%s", mask, errnoName(ferr), errnoName(err))
		if err != nil || mask != 0 {
			t.Fatalf("SetStat(size=%d): mask %#x %s %s", shrink, mask, errnoName(ferr), errnoName(err))
		}
		want = want[:shrink]
		pwrite("PWrite past the shrunk EOF", []byte("after shrink"), shrink+100)
		t.ExpectBytes("PRead after shrink and write", t.ReadAll(rw, 0, len(want)+100), want)

		var st linux.Statx
		t.Must(cfd.StatTo(t.Ctx, &st), "FStat(big)")
		t.ObsStat("FStat(big) while open", &st)
		if st.Size != uint64(len(want)) {
			t.Errorf("FStat size %d, want %d", st.Size, len(want))
		}
		// A second FD and a fresh lookup see the same bytes.
		ro, h2 := t.Open(cfd, unix.O_RDONLY)
		closeIfValid(h2)
		t.ExpectBytes("PRead through a second FD", t.ReadAll(ro, 0, len(want)+100), want)
		t.ExpectBytes("host view while open", t.HostRead("big"), want)
		t.ExpectErrno("FSync(big)", rw.Sync(t.Ctx), 0)
		t.Close(ro)
		t.Close(rw)
		again, h3 := t.Open(cfd, unix.O_RDONLY)
		closeIfValid(h3)
		t.ExpectBytes("PRead after close and reopen", t.ReadAll(again, 0, len(want)+100), want)
		t.Close(again)
		t.Close(cfd)
	},
}

// largeFileContents is 2 MiB + 12345 bytes of pattern with the marker inside.
func largeFileContents() []byte {
	b := pattern(2<<20+12345, 7)
	copy(b[1<<20-10:], withMarker("inside a large file"))
	return b
}
