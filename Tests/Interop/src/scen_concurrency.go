package main

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

const (
	hammerGoroutines = 16
	hammerRounds     = 40
)

// concurrency: 16 goroutines share one connection. The client hands each
// in-flight RPC its own flipcall channel (up to GOMAXPROCS channels, which
// main raises to 16) and falls back to the socket when all are busy, so this
// drives several channels and the socket at once.
var scenarioConcurrency = Scenario{
	Name: "concurrency",
	Run: func(t *T) {
		var wg sync.WaitGroup
		errs := make(chan string, hammerGoroutines*4)
		for g := 0; g < hammerGoroutines; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				if msg := hammer(t, g); msg != "" {
					errs <- fmt.Sprintf("goroutine %d: %s", g, msg)
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		failed := 0
		for e := range errs {
			failed++
			t.Errorf("%s", e)
		}
		t.Obs.Addf("goroutines failed", "%d", failed)
		// Host: every goroutine left exactly its final file behind.
		for g := 0; g < hammerGoroutines; g++ {
			rel := fmt.Sprintf("g%02d", g)
			names := hostNames(t, rel)
			if len(names) != 1 || names[0] != "final" {
				t.Errorf("host %s holds %v, want [final]", rel, names)
				continue
			}
			t.ExpectBytes("host "+rel+"/final", t.HostRead(rel+"/final"), pattern(4096, byte(g)))
		}
	},
}

// hammer runs one goroutine's workload and returns a failure description.
func hammer(t *T, g int) string {
	ctx := t.Ctx
	c := t.S.Client
	din, err := t.S.RootFD.MkdirAt(ctx, fmt.Sprintf("g%02d", g), 0755, myUID, myGID)
	if err != nil {
		return "MkdirAt: " + errnoName(err)
	}
	dir := c.NewFD(din.ControlFD)
	defer dir.Close(ctx, true)
	data := pattern(65536, byte(g))
	for r := 0; r < hammerRounds; r++ {
		name := fmt.Sprintf("f%d", r)
		in, ofdID, h, err := dir.OpenCreateAt(ctx, name, unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		if err != nil {
			return fmt.Sprintf("round %d OpenCreateAt: %s", r, errnoName(err))
		}
		closeIfValid(h)
		ofd := c.NewFD(ofdID)
		cfd := c.NewFD(in.ControlFD)
		if n, err := ofd.Write(ctx, data, 0); err != nil || n != uint64(len(data)) {
			return fmt.Sprintf("round %d PWrite: %d %s", r, n, errnoName(err))
		}
		buf := make([]byte, len(data))
		if n, err := ofd.Read(ctx, buf, 0); err != nil || n != uint64(len(data)) || string(buf) != string(data) {
			return fmt.Sprintf("round %d PRead: %d %s (data match %v)", r, n, errnoName(err), string(buf) == string(data))
		}
		var st linux.Statx
		if err := cfd.StatTo(ctx, &st); err != nil || st.Size != uint64(len(data)) {
			return fmt.Sprintf("round %d FStat: size %d %s", r, st.Size, errnoName(err))
		}
		if mask, ferr, err := cfd.SetStat(ctx, &linux.Statx{Mask: linux.STATX_SIZE, Size: 4096}); err != nil || mask != 0 {
			return fmt.Sprintf("round %d SetStat: %#x %s %s", r, mask, errnoName(ferr), errnoName(err))
		}
		if stats, err := t.S.RootFD.WalkStat(ctx, []string{fmt.Sprintf("g%02d", g), name}); err != nil || len(stats) != 2 || stats[1].Size != 4096 {
			return fmt.Sprintf("round %d WalkStat: %d stats %s", r, len(stats), errnoName(err))
		}
		ofd.Close(ctx, r%2 == 0) // mix batched and immediate closes
		cfd.Close(ctx, false)
		if r == hammerRounds-1 {
			if err := dir.RenameAt(ctx, name, dir.ID(), "final"); err != nil {
				return "final RenameAt: " + errnoName(err)
			}
			break
		}
		if err := dir.UnlinkAt(ctx, name, 0); err != nil {
			return fmt.Sprintf("round %d UnlinkAt: %s", r, errnoName(err))
		}
	}
	ents := map[string]bool{}
	od, h, err := dir.OpenAt(ctx, unix.O_RDONLY)
	if err != nil {
		return "OpenAt(dir): " + errnoName(err)
	}
	closeIfValid(h)
	ofd := c.NewFD(od)
	defer ofd.Close(ctx, true)
	for count := int32(-65536); ; count = 65536 {
		batch, err := ofd.Getdents64(ctx, count)
		if err != nil {
			return "Getdents64: " + errnoName(err)
		}
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			ents[string(e.Name)] = true
		}
	}
	delete(ents, ".")
	delete(ents, "..")
	if len(ents) != 1 || !ents["final"] {
		return fmt.Sprintf("Getdents64 lists %v, want [final]", sortedKeys(ents))
	}
	return ""
}

var _ = lisafs.InvalidFDID
