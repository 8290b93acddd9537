package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/lisafs"
)

// Scenario is one named interop check. Run receives a mounted session on a
// fresh host directory (prepared by Setup, if any) and checks results itself.
type Scenario struct {
	Name     string
	Readonly bool                   // mount the server read-only
	Setup    func(t *T, dir string) // populate the host directory before mounting
	Run      func(t *T)
	// SealedArgs are extra `sealgofer serve` arguments for the sealed store.
	SealedArgs []string
}

// T is the per-(scenario, server) test context.
type T struct {
	S        *Session
	Ctx      context.Context
	Obs      *Observations
	View     hostView // the host side of the mount (see hostview.go)
	failures []string
	notes    []string
}

// Note records information printed under the scenario line.
func (t *T) Note(format string, args ...interface{}) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// abortScenario is panicked by Fatalf to stop a scenario early.
type abortScenario struct{}

// Errorf records a failure and continues.
func (t *T) Errorf(format string, args ...interface{}) {
	t.failures = append(t.failures, fmt.Sprintf(format, args...))
}

// Fatalf records a failure and stops the scenario.
func (t *T) Fatalf(format string, args ...interface{}) {
	t.Errorf(format, args...)
	panic(abortScenario{})
}

// Must stops the scenario if err is not nil.
func (t *T) Must(err error, what string) {
	if err != nil {
		t.Fatalf("%s: unexpected error %s", what, errnoName(err))
	}
}

// Host returns the host path of a mount-relative path. Only meaningful for
// passthrough servers: scenarios use it for host-only operations (sockets,
// xattrs) after checking Sealed().
func (t *T) Host(rel string) string { return filepath.Join(t.S.Dir, rel) }

// Sealed reports whether the server under test serves a sealed store.
func (t *T) Sealed() bool { return t.S.Kind == kindSealed }

// Supported reports whether the server advertised message m at mount.
func (t *T) Supported(m lisafs.MID) bool { return t.S.Client.IsSupported(m) }

// ExpectErrno checks that err is exactly want, records it as an observation
// under key, and returns whether it matched.
func (t *T) ExpectErrno(key string, err error, want unix.Errno) bool {
	t.Obs.Add(key, errnoName(err))
	return t.CheckErrno(key, err, want)
}

// CheckErrno is ExpectErrno without an observation: for checks that only one
// server kind makes (e.g. what a sealed store refuses by design).
func (t *T) CheckErrno(key string, err error, want unix.Errno) bool {
	got := errnoName(err)
	ok := err == nil
	if want != 0 {
		ok = err != nil && errors.Is(err, want)
	}
	if !ok {
		t.Errorf("%s: want %s, got %s", key, errnoName(want), got)
		return false
	}
	return true
}

// errnoName renders an error as its errno name where it is one.
func errnoName(err error) string {
	if err == nil || err == unix.Errno(0) {
		return "ok"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return fmt.Sprintf("errno(%d)", int(e))
	}
	return err.Error()
}

// Observations are normalized facts a scenario saw (errnos, modes, sizes,
// name sets) that must agree between servers. Skipped keys record why a
// comparison is impossible (e.g. the server does not advertise a message).
type Observations struct {
	order  []string
	values map[string]string
	skips  map[string]string
}

func newObservations() *Observations {
	return &Observations{values: map[string]string{}, skips: map[string]string{}}
}

// Add records an observation under key.
func (o *Observations) Add(key, value string) {
	if _, ok := o.values[key]; !ok {
		o.order = append(o.order, key)
	}
	o.values[key] = value
}

// Addf records a formatted observation.
func (o *Observations) Addf(key, format string, args ...interface{}) {
	o.Add(key, fmt.Sprintf(format, args...))
}

// Skip marks key as not comparable, with the reason.
func (o *Observations) Skip(key, reason string) {
	o.skips[key] = reason
}

// skipAllKey marks a scenario whose observations cannot be compared at all.
const skipAllKey = "*"

// SkipAll marks the whole scenario as not comparable, with the reason.
func (o *Observations) SkipAll(reason string) {
	o.skips[skipAllKey] = reason
}

// compareObservations returns mismatches and notes on skipped comparisons.
func compareObservations(a, b *Observations, an, bn serverKind) (diffs, notes []string) {
	if r, ok := a.skips[skipAllKey]; ok {
		return nil, []string{fmt.Sprintf("comparison skipped (%s: %s)", an, r)}
	}
	if r, ok := b.skips[skipAllKey]; ok {
		return nil, []string{fmt.Sprintf("comparison skipped (%s: %s)", bn, r)}
	}
	keys := map[string]bool{}
	for _, k := range a.order {
		keys[k] = true
	}
	for _, k := range b.order {
		keys[k] = true
	}
	for k := range a.skips {
		keys[k] = true
	}
	for k := range b.skips {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if r, ok := a.skips[k]; ok {
			notes = append(notes, fmt.Sprintf("%s: comparison skipped (%s: %s)", k, an, r))
			continue
		}
		if r, ok := b.skips[k]; ok {
			notes = append(notes, fmt.Sprintf("%s: comparison skipped (%s: %s)", k, bn, r))
			continue
		}
		av, aok := a.values[k]
		bv, bok := b.values[k]
		switch {
		case !aok:
			diffs = append(diffs, fmt.Sprintf("%s: only %s observed it (%s)", k, bn, bv))
		case !bok:
			diffs = append(diffs, fmt.Sprintf("%s: only %s observed it (%s)", k, an, av))
		case av != bv:
			diffs = append(diffs, fmt.Sprintf("%s: %s=%s %s=%s", k, an, av, bn, bv))
		}
	}
	return diffs, notes
}

// runResult is the outcome of one scenario against one server.
type runResult struct {
	kind     serverKind
	failures []string
	notes    []string
	// docNotes are documented differences found by the offline store checks;
	// printed always.
	docNotes []string
	obs      *Observations
	elapsed  time.Duration
	// tree is the host directory after the server exited (passthrough
	// kinds), the reference a sealed store's export must reproduce.
	tree *treeSnap
}

const scenarioTimeout = 120 * time.Second

// runScenario runs sc against one server on a fresh directory under base.
// For kindSealed, ref is the tree a passthrough server left for the same
// scenario (nil if none ran).
func runScenario(sc Scenario, kind serverKind, base string, opts startOptions, ref *treeSnap) (res runResult) {
	res = runResult{kind: kind, obs: newObservations()}
	start := time.Now()
	defer func() { res.elapsed = time.Since(start) }()
	dir := filepath.Join(base, fmt.Sprintf("%s-%s", sc.Name, kind))
	var sealed *sealedStore
	if kind == kindSealed {
		var err error
		if sealed, err = newSealedStore(opts.sealgoferBin, dir); err != nil {
			res.failures = []string{fmt.Sprintf("sealed store layout: %v", err)}
			return res
		}
		defer sealed.cleanup()
		dir = sealed.plain
	} else if err := os.MkdirAll(dir, 0755); err != nil {
		res.failures = []string{fmt.Sprintf("mkdir %s: %v", dir, err)}
		return res
	}
	t := &T{Ctx: context.Background(), Obs: res.obs}
	if sc.Setup != nil && !protect(t, func() { sc.Setup(t, dir) }) {
		res.failures = append([]string{"setup failed"}, t.failures...)
		return res
	}
	if sealed != nil {
		if err := sealed.prepare(); err != nil {
			res.failures = []string{err.Error()}
			return res
		}
		t.View = clientView{t}
	} else {
		t.View = dirView{dir}
	}
	opts.readonly = sc.Readonly
	opts.sealed = sealed
	opts.sealedArgs = sc.SealedArgs
	s, err := startSession(kind, dir, opts)
	if err != nil {
		res.failures = []string{err.Error()}
		return res
	}
	t.S = s
	done := make(chan struct{})
	go func() {
		defer close(done)
		protect(t, func() { sc.Run(t) })
		if !sc.Readonly {
			protect(t, func() { writeMarkerFile(t) })
		}
		if sealed != nil {
			protect(t, func() { sealed.recordClientTree(t) })
		}
	}()
	select {
	case <-done:
	case <-time.After(scenarioTimeout):
		s.Kill()
		res.failures = append(t.failures, fmt.Sprintf("timed out after %v (server killed)%s", scenarioTimeout, s.childLogSuffix()))
		return res
	}
	if err := s.Close(); err != nil {
		t.Errorf("%v", err)
	} else if len(t.failures) > 0 {
		if tail := s.childLogSuffix(); tail != "" {
			t.failures[len(t.failures)-1] += tail
		}
	}
	if sealed != nil {
		// Even after a bad exit: what the store looks like then is worth knowing.
		failures, notes := sealed.offlineChecks(ref)
		for _, f := range failures {
			t.Errorf("offline: %s", f)
		}
		res.docNotes = notes
	} else if snap, err := snapshotTree(dir, map[string]string{outsideDir(dir): "$OUTSIDE", dir: "$MOUNT"}, nil); err != nil {
		t.Errorf("snapshot of the host directory: %v", err)
	} else {
		snap.taken = start
		res.tree = snap
	}
	res.failures = t.failures
	res.notes = t.notes
	return res
}

// writeMarkerFile ends every writable scenario: the client writes the
// plaintext marker once through PWrite and once through the donated host FD
// (or PWrite again when none is donated), so every store has client-written
// plaintext for the offline scan to look for, and every passthrough tree has
// the same file for the export comparison.
func writeMarkerFile(t *T) {
	in, ofdID, h, err := t.S.RootFD.OpenCreateAt(t.Ctx, ".interop-marker", unix.O_RDWR, linux.ModeRegular|0644, myUID, myGID)
	t.Must(err, "OpenCreateAt(.interop-marker)")
	ofd := t.FD(ofdID)
	first := withMarker("via PWrite")
	_, err = ofd.Write(t.Ctx, first, 0)
	t.Must(err, "PWrite(.interop-marker)")
	second := withMarker("via the donated FD")
	if h >= 0 {
		if _, err := unix.Pwrite(h, second, int64(len(first))); err != nil {
			t.Errorf("pwrite(donated FD of .interop-marker): %v", err)
		}
		unix.Close(h)
	} else if _, err := ofd.Write(t.Ctx, second, uint64(len(first))); err != nil {
		t.Errorf("PWrite(.interop-marker): %s", errnoName(err))
	}
	t.Close(ofd)
	t.Close(t.FD(in.ControlFD))
}

// protect runs fn, converting Fatalf aborts and unexpected panics into
// failures. It returns false if fn did not complete.
func protect(t *T, fn func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
			if _, isAbort := r.(abortScenario); !isAbort {
				t.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}
	}()
	fn()
	return len(t.failures) == 0
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}
