package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/lisafs"
)

const benchWalkFiles = 1000

// benchOp is one measured metadata operation. It returns an error instead of
// failing so that a broken server shows up as such in the table.
type benchOp struct {
	name string
	run  func(b *benchEnv, i int) error
}

type benchEnv struct {
	ctx    context.Context
	s      *Session
	data4k lisafs.ClientFD // control FD of a 4 KiB file
	bigDir lisafs.ClientFD // control FD of a 5000-entry directory
	buf    []byte
	// created counts files made by create+close.
	created int
}

var benchOps = []benchOp{
	// Diagnostic rows: one bare round trip, and Walk without the FStat.
	{"fstat (1 RPC)", func(b *benchEnv, i int) error {
		var st linux.Statx
		return b.data4k.StatTo(b.ctx, &st)
	}},
	{"walk", func(b *benchEnv, i int) error {
		in, err := b.s.RootFD.Walk(b.ctx, fmt.Sprintf("w%04d", i%benchWalkFiles))
		if err != nil {
			return err
		}
		b.s.Client.CloseFD(b.ctx, in.ControlFD, false)
		return nil
	}},
	{"walk+stat", func(b *benchEnv, i int) error {
		in, err := b.s.RootFD.Walk(b.ctx, fmt.Sprintf("w%04d", i%benchWalkFiles))
		if err != nil {
			return err
		}
		fd := b.s.Client.NewFD(in.ControlFD)
		var st linux.Statx
		err = fd.StatTo(b.ctx, &st)
		fd.Close(b.ctx, false) // batched, as the sentry does
		return err
	}},
	{"create+close", func(b *benchEnv, i int) error {
		b.created++ // names must stay unique across repeated measurements
		in, ofd, h, err := b.s.RootFD.OpenCreateAt(b.ctx, fmt.Sprintf("c%07d", b.created), unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
		if err != nil {
			return err
		}
		closeIfValid(h)
		b.s.Client.CloseFD(b.ctx, ofd, false)
		b.s.Client.CloseFD(b.ctx, in.ControlFD, false)
		return nil
	}},
	{"open+read4k+close", func(b *benchEnv, i int) error {
		id, h, err := b.data4k.OpenAt(b.ctx, unix.O_RDONLY)
		if err != nil {
			return err
		}
		closeIfValid(h)
		fd := b.s.Client.NewFD(id)
		n, err := fd.Read(b.ctx, b.buf, 0)
		fd.Close(b.ctx, false)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if n != 4096 {
			return fmt.Errorf("read %d bytes, want 4096", n)
		}
		return nil
	}},
	{"getdents(5000)", func(b *benchEnv, i int) error {
		id, h, err := b.bigDir.OpenAt(b.ctx, unix.O_RDONLY)
		if err != nil {
			return err
		}
		closeIfValid(h)
		fd := b.s.Client.NewFD(id)
		defer fd.Close(b.ctx, false)
		total := 0
		for count := int32(-65536); ; count = 65536 {
			ents, err := fd.Getdents64(b.ctx, count)
			if err != nil {
				return err
			}
			if len(ents) == 0 {
				break
			}
			total += len(ents)
		}
		if total < bigDirEntries {
			return fmt.Errorf("listed %d entries, want >= %d", total, bigDirEntries)
		}
		return nil
	}},
}

// benchResult is the measured rate of one op on one server.
type benchResult struct {
	opsPerSec float64
	cpuPerOp  time.Duration // client + server CPU time per op
	err       error
}

// runBenchmarks takes `repeats` interleaved measurements per op and server and
// reports the median, which tames noise from other processes on the machine.
func runBenchmarks(kinds []serverKind, base string, opts startOptions, seconds float64, benchRepeats int) int {
	fmt.Printf("bench: gVisor lisafs client, single-threaded, median of %d interleaved runs of %.1fs per op and server, GOMAXPROCS=%d, scratch %s\n",
		benchRepeats, seconds, runtime.GOMAXPROCS(0), base)
	envs := map[serverKind]*benchEnv{}
	failed := false
	for _, k := range kinds {
		env, err := benchSetup(k, base, opts)
		if err != nil {
			fmt.Printf("bench: %s: %v\n", k, err)
			failed = true
			continue
		}
		defer env.s.Close()
		envs[k] = env
	}
	results := map[serverKind][]benchResult{}
	for _, op := range benchOps {
		samples := map[serverKind][]float64{}
		cpuSamples := map[serverKind][]float64{}
		errs := map[serverKind]error{}
		for r := 0; r < benchRepeats; r++ {
			for _, k := range kinds {
				env, ok := envs[k]
				if !ok || errs[k] != nil {
					continue
				}
				res := measure(env, op, seconds)
				if res.err != nil {
					errs[k] = res.err
					continue
				}
				samples[k] = append(samples[k], res.opsPerSec)
				cpuSamples[k] = append(cpuSamples[k], float64(res.cpuPerOp))
			}
		}
		for _, k := range kinds {
			if _, ok := envs[k]; !ok {
				continue
			}
			results[k] = append(results[k], benchResult{opsPerSec: median(samples[k]), cpuPerOp: time.Duration(median(cpuSamples[k])), err: errs[k]})
		}
	}
	header := fmt.Sprintf("%-20s", "op")
	for _, k := range kinds {
		header += fmt.Sprintf(" %16s", string(k)+" ops/s")
	}
	if len(kinds) == 2 {
		header += "  time/op ratio"
	}
	for _, k := range kinds {
		header += fmt.Sprintf(" %18s", string(k)+" CPU µs/op")
	}
	if len(kinds) == 2 {
		header += "  CPU/op ratio"
	}
	fmt.Println(header)
	fmt.Println(strings.Repeat("-", len([]rune(header))))
	for i, op := range benchOps {
		line := fmt.Sprintf("%-20s", op.name)
		cells := func(format string, value func(benchResult) float64, width int) {
			for _, k := range kinds {
				rs, ok := results[k]
				switch {
				case !ok:
					line += fmt.Sprintf(" %*s", width, "n/a")
				case rs[i].err != nil:
					line += fmt.Sprintf(" %*s", width, "ERROR")
					failed = true
				default:
					line += fmt.Sprintf(" %*s", width, fmt.Sprintf(format, value(rs[i])))
				}
			}
		}
		ratio := func(value func(benchResult) float64) {
			if len(kinds) != 2 {
				return
			}
			a, aok := results[kindSealgofer]
			f, fok := results[kindFsgofer]
			if aok && fok && a[i].err == nil && f[i].err == nil && value(f[i]) > 0 {
				line += fmt.Sprintf("  %13s", fmt.Sprintf("%.2fx", value(a[i])/value(f[i])))
			} else {
				line += fmt.Sprintf("  %13s", "-")
			}
		}
		cells("%.0f", func(r benchResult) float64 { return r.opsPerSec }, 16)
		ratio(func(r benchResult) float64 { return 1 / r.opsPerSec })
		cells("%.1f", func(r benchResult) float64 { return float64(r.cpuPerOp) / 1e3 }, 18)
		ratio(func(r benchResult) float64 { return float64(r.cpuPerOp) })
		fmt.Println(line)
	}
	if len(kinds) == 2 {
		fmt.Println("ratios are sealgofer/fsgofer (time per op: wall clock; CPU per op: client + server CPU time)")
	}
	for _, k := range kinds {
		for i, r := range results[k] {
			if r.err != nil {
				fmt.Printf("bench: %s %s: %v\n", k, benchOps[i].name, r.err)
			}
		}
	}
	if failed {
		return 1
	}
	return 0
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// benchSetup prepares a fresh tree and mounts it.
func benchSetup(kind serverKind, base string, opts startOptions) (*benchEnv, error) {
	dir := filepath.Join(base, "bench-"+string(kind))
	if err := os.MkdirAll(filepath.Join(dir, "big"), 0755); err != nil {
		return nil, err
	}
	for i := 0; i < benchWalkFiles; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("w%04d", i)), []byte("x"), 0644); err != nil {
			return nil, err
		}
	}
	for i := 0; i < bigDirEntries; i++ {
		if err := os.WriteFile(filepath.Join(dir, "big", fmt.Sprintf("f%05d", i)), nil, 0644); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "data4k"), pattern(4096, 9), 0644); err != nil {
		return nil, err
	}
	s, err := startSession(kind, dir, opts)
	if err != nil {
		return nil, err
	}
	b := &benchEnv{ctx: context.Background(), s: s, buf: make([]byte, 4096)}
	in, err := s.RootFD.Walk(b.ctx, "data4k")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("walk data4k: %v", err)
	}
	b.data4k = s.Client.NewFD(in.ControlFD)
	in, err = s.RootFD.Walk(b.ctx, "big")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("walk big: %v", err)
	}
	b.bigDir = s.Client.NewFD(in.ControlFD)
	return b, nil
}

// measure warms up for a tenth of the time, then runs op for `seconds`.
func measure(b *benchEnv, op benchOp, seconds float64) benchResult {
	i := 0
	warm := time.Now().Add(time.Duration(seconds * float64(time.Second) / 10))
	for time.Now().Before(warm) {
		if err := op.run(b, i); err != nil {
			return benchResult{err: err}
		}
		i++
	}
	start := time.Now()
	cpuStart := b.cpuTime()
	deadline := start.Add(time.Duration(seconds * float64(time.Second)))
	n := 0
	for {
		if err := op.run(b, i); err != nil {
			return benchResult{err: err}
		}
		i++
		n++
		if n%16 == 0 && time.Now().After(deadline) {
			break
		}
	}
	elapsed := time.Since(start)
	cpu := b.cpuTime() - cpuStart
	return benchResult{opsPerSec: float64(n) / elapsed.Seconds(), cpuPerOp: cpu / time.Duration(n)}
}

// cpuTime is the CPU time used so far by this process (the client, and the
// in-process fsgofer) plus the sealgofer child, if any. CPU per op is far less
// disturbed by other processes competing for the cores than wall time.
func (b *benchEnv) cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if b.s.child != nil {
		total += childCPU(b.s.child.Process.Pid)
	}
	return total
}

// childCPU reads utime+stime (all threads, clock ticks) from /proc/PID/stat.
func childCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields overall, i.e. the 12th and 13th after ")".
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}
