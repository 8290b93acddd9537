package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sealed mode: every scenario also runs against `sealgofer serve --store S
// --key-file K` on a fresh store. The plaintext the client sees is not on the
// host, so:
//
//   - host-side setup goes into a staging directory that is imported with
//     `sealgofer import` (and then emptied, so nothing can read it by mistake);
//   - host-side checks during the run go through the client (hostview.go);
//   - after the server has exited, the store is checked offline: `info` shows
//     no pending journal, `verify` exits 0, `export -r` returns exactly the
//     tree the passthrough server left on its host directory (types, modes,
//     sizes, contents, symlink targets, hard links, explicitly set mtimes),
//     and no plaintext (the marker, or any sampled window of any exported
//     file) appears in any byte of any file under S; the scratch directory is
//     empty.

// plainMarker is written into file contents by scenarios and by the harness
// (writeMarkerFile); it must never appear in a sealed store.
const plainMarker = "SGI-PLAINTEXT-MARKER-7c1e5ea1ed"

// withMarker returns s followed by the marker.
func withMarker(s string) []byte { return []byte(s + " " + plainMarker + "\n") }

// sealedStore is one scenario's store and its companions.
type sealedStore struct {
	bin     string
	root    string // <base>/<scenario>-sealed
	plain   string // staging directory: Setup's "host directory"
	store   string
	keyFile string
	scratch string // on tmpfs, outside the store
	export  string

	importSkipped []string // entries `sealgofer import` reported as skipped
	// lastSeen is what the client saw of every path at the end of the run
	// (recordClientTree); the store must still say so after the restart.
	lastSeen map[string]unix.Stat_t

	cpuMu  sync.Mutex
	cpuCLI time.Duration // CPU time of the offline CLI commands
}

// cpuTotals accumulates child CPU time for the final report: `serve`
// children per server kind, and the offline CLI commands.
var cpuTotals = struct {
	sync.Mutex
	serve map[serverKind]time.Duration
	cli   time.Duration
}{serve: map[serverKind]time.Duration{}}

// newSealedStore lays out a fresh store root; Setup fills s.plain afterwards.
func newSealedStore(bin, root string) (*sealedStore, error) {
	s := &sealedStore{
		bin:     bin,
		root:    root,
		plain:   filepath.Join(root, "plain"),
		store:   filepath.Join(root, "store"),
		keyFile: filepath.Join(root, "key"),
		export:  filepath.Join(root, "export"),
	}
	if err := os.MkdirAll(s.plain, 0755); err != nil {
		return nil, err
	}
	// tmpfs like the default private scratch; our own so we can check it.
	scratch, err := os.MkdirTemp(scratchParent(), "sgi-scratch-")
	if err != nil {
		return nil, fmt.Errorf("scratch dir: %v", err)
	}
	s.scratch = scratch
	return s, nil
}

func scratchParent() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// cleanup removes what lives outside the scenario directory.
func (s *sealedStore) cleanup() { os.RemoveAll(s.scratch) }

// cli runs one sealgofer subcommand and returns its stdout, stderr and error.
func (s *sealedStore) cli(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err := cmd.Run()
	if cmd.ProcessState != nil {
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		s.cpuMu.Lock()
		s.cpuCLI += cpu
		s.cpuMu.Unlock()
		cpuTotals.Lock()
		cpuTotals.cli += cpu
		cpuTotals.Unlock()
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after 60s")
	}
	return out.String(), errb.String(), err
}

func cliFailure(what string, stdout, stderr string, err error) error {
	return fmt.Errorf("`sealgofer %s` failed (%v):\n%s", what, err, indent(strings.TrimSpace(stdout+"\n"+stderr), "  "))
}

// prepare creates the store and imports what Setup put into s.plain, then
// empties s.plain (keeping the directory: scenarios derive sibling paths).
func (s *sealedStore) prepare() error {
	if out, errs, err := s.cli("init", "--store", s.store, "--key-file", s.keyFile); err != nil {
		return cliFailure("init", out, errs, err)
	}
	out, errs, err := s.cli("import", "--store", s.store, "--key-file", s.keyFile, s.plain, "/")
	if err != nil {
		return cliFailure("import", out, errs, err)
	}
	for _, line := range strings.Split(errs, "\n") {
		if rest := strings.TrimPrefix(line, "sealgofer: skipped "); rest != line {
			s.importSkipped = append(s.importSkipped, rest)
		}
	}
	ents, err := os.ReadDir(s.plain)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.plain, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// skippedByImport reports whether import skipped the staging entry rel.
func (s *sealedStore) skippedByImport(rel string) bool {
	for _, sk := range s.importSkipped {
		if strings.HasPrefix(sk, rel+":") {
			return true
		}
	}
	return false
}

// offlineChecks runs after the server has exited. ref is the tree the
// passthrough server left behind (nil: no content comparison). It returns
// failures and notes on documented differences.
func (s *sealedStore) offlineChecks(ref *treeSnap) (failures, notes []string) {
	fail := func(format string, args ...interface{}) { failures = append(failures, fmt.Sprintf(format, args...)) }

	// A commit journal left behind means a commit was interrupted; verify
	// would replay it silently, so look first.
	if out, errs, err := s.cli("info", "--store", s.store, "--json"); err != nil {
		fail("%v", cliFailure("info", out, errs, err))
	} else {
		var info struct {
			PendingJournals int `json:"pendingJournals"`
		}
		if jerr := json.Unmarshal([]byte(out), &info); jerr != nil {
			fail("sealgofer info --json: %v in %q", jerr, out)
		} else if info.PendingJournals != 0 {
			fail("store has %d pending commit journals after a clean server exit", info.PendingJournals)
		}
	}
	if out, errs, err := s.cli("verify", "--store", s.store, "--key-file", s.keyFile); err != nil {
		fail("%v", cliFailure("verify", out, errs, err))
	}
	os.RemoveAll(s.export)
	out, errs, err := s.cli("export", "--store", s.store, "--key-file", s.keyFile, "-r", "-o", s.export, "/")
	if err != nil {
		fail("%v", cliFailure("export -r", out, errs, err))
		return failures, notes
	}
	if strings.Contains(errs, "skipped") {
		fail("export -r skipped entries:\n%s", indent(strings.TrimSpace(errs), "  "))
	}
	index := newPlaintextIndex()
	got, err := snapshotTree(s.export, map[string]string{s.plain: "$MOUNT", outsideDir(s.plain): "$OUTSIDE"}, index)
	if err != nil {
		fail("snapshot of the export: %v", err)
		return failures, notes
	}
	if ref != nil {
		f, n := diffTrees(ref, got)
		failures = append(failures, f...)
		notes = append(notes, n...)
	}
	failures = append(failures, diffLastSeen(s.lastSeen, got)...)
	index.addNeedle([]byte(plainMarker))
	failures = append(failures, scanForPlaintext(s.store, index)...)
	if ents, err := os.ReadDir(s.scratch); err != nil {
		fail("scratch dir: %v", err)
	} else if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		fail("scratch dir %s not empty after the server exited: %v", s.scratch, names)
	}
	return failures, notes
}

// recordClientTree stats every path of the mount through the client at the
// end of a sealed run.
func (s *sealedStore) recordClientTree(t *T) {
	seen := map[string]unix.Stat_t{}
	var walk func(rel string)
	walk = func(rel string) {
		st, err := t.View.Lstat(rel)
		if err != nil {
			t.Errorf("end-of-run client tree: stat %s: %s", rel, errnoName(err))
			return
		}
		seen[rel] = st
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return
		}
		names, err := t.View.Names(rel)
		if err != nil {
			t.Errorf("end-of-run client tree: list %s: %s", rel, errnoName(err))
			return
		}
		for _, n := range names {
			walk(filepath.Join(rel, n))
		}
	}
	walk(".")
	s.lastSeen = seen
}

// diffLastSeen compares what the client last saw with the export: the
// server's exit and a reopen of the store must not change a type, mode, size,
// link count or mtime.
func diffLastSeen(seen map[string]unix.Stat_t, got *treeSnap) (failures []string) {
	if seen == nil {
		return nil
	}
	paths := make([]string, 0, len(seen))
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		c := seen[p]
		g, ok := got.entries[p]
		if !ok {
			failures = append(failures, fmt.Sprintf("client saw %s at the end of the run, the export lacks it", p))
			continue
		}
		typ := c.Mode & unix.S_IFMT
		var diffs []string
		if g.typ != typ {
			diffs = append(diffs, fmt.Sprintf("type %s, client saw %s", typeName(g.typ), typeName(typ)))
		}
		if typ != unix.S_IFLNK && g.perm != c.Mode&07777 {
			diffs = append(diffs, fmt.Sprintf("mode %#o, client saw %#o", g.perm, c.Mode&07777))
		}
		if typ != unix.S_IFDIR && g.size != c.Size {
			diffs = append(diffs, fmt.Sprintf("size %d, client saw %d", g.size, c.Size))
		}
		if typ == unix.S_IFREG && uint64(len(strings.Split(got.links[p], " = "))) != c.Nlink && !(got.links[p] == "" && c.Nlink == 1) {
			diffs = append(diffs, fmt.Sprintf("hard links {%s}, client saw nlink %d", got.links[p], c.Nlink))
		}
		if g.mtime != c.Mtim {
			diffs = append(diffs, fmt.Sprintf("mtime %d.%09d, client saw %d.%09d", g.mtime.Sec, g.mtime.Nsec, c.Mtim.Sec, c.Mtim.Nsec))
		}
		if len(diffs) > 0 {
			failures = append(failures, fmt.Sprintf("export %s: %s (last seen through the client before the server exited)", p, strings.Join(diffs, ", ")))
		}
	}
	return failures
}

// scanForPlaintext reads every byte of every file under root (symlink targets
// and entry names too) and reports plaintext from the index found there.
func scanForPlaintext(root string, index *plaintextIndex) (failures []string) {
	seen := map[string]bool{}
	report := func(where string, data []byte) {
		for _, hit := range index.find(data) {
			key := where + "\x00" + hit
			if !seen[key] && len(seen) < 20 {
				seen[key] = true
				failures = append(failures, fmt.Sprintf("PLAINTEXT in the store: %s contains \"%s\"", where, hit))
			}
		}
	}
	files := 0
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if strings.Contains(info.Name(), plainMarker) {
			failures = append(failures, fmt.Sprintf("PLAINTEXT marker in a name in the store: %s", rel))
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			report(rel+" (symlink target)", []byte(target))
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			report(rel, data)
		}
		return nil
	})
	if err != nil {
		failures = append(failures, fmt.Sprintf("scanning the store: %v", err))
	}
	if files == 0 {
		failures = append(failures, "scanning the store: no files found (wrong path?)")
	}
	return failures
}

func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
	}
	return sb.String()
}

// addServeCPU books a `serve` child's CPU time.
func addServeCPU(kind serverKind, state *os.ProcessState) {
	if state == nil {
		return
	}
	if ru, ok := state.SysUsage().(*syscall.Rusage); ok && ru != nil {
		cpuTotals.Lock()
		cpuTotals.serve[kind] += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		cpuTotals.Unlock()
	}
}
