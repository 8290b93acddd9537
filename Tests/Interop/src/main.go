// Command interop plays the gVisor sentry against lisafs servers using
// gVisor's own pkg/lisafs client, to prove sealgofer's server interoperates
// with it. Each scenario runs against gVisor's fsgofer (in-process) and/or a
// `sealgofer serve` child; both must pass and, when both run, agree.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/log"
)

var allScenarios = []Scenario{
	scenarioMount,
	scenarioWalk,
	scenarioStat,
	scenarioCreate,
	scenarioDonatedFD,
	scenarioPReadPWrite,
	scenarioLargeFile,
	scenarioAllocate,
	scenarioFlush,
	scenarioFSync,
	scenarioSetStat,
	scenarioMkdir,
	scenarioSymlink,
	scenarioLink,
	scenarioRename,
	scenarioUnlink,
	scenarioGetdents,
	scenarioStatFS,
	scenarioXattr,
	scenarioSockets,
	scenarioMknod,
	scenarioErrENOENT,
	scenarioErrEEXIST,
	scenarioErrENOTEMPTY,
	scenarioErrENAMETOOLONG,
	scenarioErrEINVAL,
	scenarioErrEBADF,
	scenarioReadonly,
	scenarioSymlinkEscape,
	scenarioDeletedDir,
	scenarioDeepWalk,
	scenarioManyFDs,
	scenarioFDLeak,
	scenarioConcurrency,
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		fakeServe(os.Args[2:])
		return
	}
	server := flag.String("server", "all", "server(s) to test: fsgofer, sealgofer (passthrough), sealed (sealed store), both (= fsgofer,sealgofer), all (= fsgofer,sealgofer,sealed), or a comma-separated list")
	sealgoferBin := flag.String("sealgofer", "", "path to the sealgofer binary (needed unless --server fsgofer)")
	only := flag.String("run", "", "comma-separated scenario names to run (default: all)")
	bench := flag.Bool("bench", false, "run the metadata benchmark instead of the scenarios")
	benchSeconds := flag.Float64("bench-seconds", 1, "measuring time per benchmark op, server and repeat")
	benchRepeats := flag.Int("bench-repeats", 7, "interleaved repeats per benchmark op and server (the median is reported)")
	tmp := flag.String("tmpdir", "/tmp", "where to create scratch directories (must support user xattrs; keep it short for unix sockets); --bench defaults to /dev/shm")
	keep := flag.Bool("keep", false, "keep the scratch directory")
	verbose := flag.Bool("v", false, "print observations and notes for passing scenarios too")
	flag.Parse()

	// The lisafs client creates GOMAXPROCS channels; 16 lets the concurrency
	// scenario keep many channels busy at once even on a 2-core machine.
	if runtime.GOMAXPROCS(0) < hammerGoroutines {
		runtime.GOMAXPROCS(hammerGoroutines)
	}
	log.SetLevel(log.Warning)

	kinds, err := parseKinds(*server)
	if err != nil {
		fatalf("%v", err)
	}
	opts := startOptions{sealgoferBin: *sealgoferBin}
	for _, k := range kinds {
		if k != kindFsgofer {
			if *sealgoferBin == "" {
				fatalf("--sealgofer PATH is required to test sealgofer")
			}
			if _, err := os.Stat(*sealgoferBin); err != nil {
				fatalf("sealgofer binary: %v", err)
			}
		}
	}

	// Benchmarks default to tmpfs: on a shared disk, ext4 create/journal
	// latency from other processes swamps the gofer's own cost.
	tmpSet := false
	flag.Visit(func(f *flag.Flag) { tmpSet = tmpSet || f.Name == "tmpdir" })
	if *bench && !tmpSet {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			*tmp = "/dev/shm"
		}
	}
	base, err := os.MkdirTemp(*tmp, "sgi")
	if err != nil {
		fatalf("scratch dir: %v", err)
	}
	if !*keep {
		defer os.RemoveAll(base)
	}

	if *bench {
		var benchKinds []serverKind
		for _, k := range kinds {
			if k != kindSealed {
				benchKinds = append(benchKinds, k)
			}
		}
		code := runBenchmarks(benchKinds, base, opts, *benchSeconds, *benchRepeats)
		if !*keep {
			os.RemoveAll(base)
		}
		os.Exit(code)
	}

	selected := allScenarios
	if *only != "" {
		want := map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			want[strings.TrimSpace(n)] = true
		}
		selected = nil
		for _, sc := range allScenarios {
			if want[sc.Name] {
				selected = append(selected, sc)
				delete(want, sc.Name)
			}
		}
		if len(want) > 0 {
			fatalf("unknown scenarios: %v", sortedKeys(want))
		}
	}

	fmt.Printf("interop: gVisor lisafs client vs %s; scratch %s\n", strings.Trim(fmt.Sprint(kinds), "[]"), base)
	wallStart := time.Now()
	cpuStart := selfCPU()
	passed, failed := 0, 0
	for _, sc := range selected {
		results := make([]runResult, 0, len(kinds))
		for _, k := range kinds {
			var ref *treeSnap
			if k == kindSealed {
				ref = referenceTree(results)
			}
			results = append(results, runScenario(sc, k, base, opts, ref))
		}
		if reportScenario(sc.Name, results, *verbose) {
			passed++
		} else {
			failed++
		}
	}
	cpuTotals.Lock()
	var serveParts []string
	for _, k := range kinds {
		if d, ok := cpuTotals.serve[k]; ok {
			serveParts = append(serveParts, fmt.Sprintf("%s serve %.1fs", k, d.Seconds()))
		}
	}
	if cpuTotals.cli > 0 {
		serveParts = append(serveParts, fmt.Sprintf("sealgofer init/import/info/verify/export %.1fs", cpuTotals.cli.Seconds()))
	}
	cpuTotals.Unlock()
	fmt.Printf("interop: wall %.1fs; CPU: this process (client, in-process fsgofer, checks) %.1fs; children: %s\n",
		time.Since(wallStart).Seconds(), (selfCPU() - cpuStart).Seconds(), strings.Join(serveParts, ", "))
	fmt.Printf("interop: %d passed, %d failed\n", passed, failed)
	if !*keep {
		os.RemoveAll(base)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// parseKinds turns --server into the kinds to run, in an order where the
// passthrough servers run before the sealed store (whose export is compared
// with their trees). A sealed run without a passthrough server gets fsgofer
// as its reference.
func parseKinds(spec string) ([]serverKind, error) {
	want := map[serverKind]bool{}
	for _, part := range strings.Split(spec, ",") {
		switch strings.TrimSpace(part) {
		case "all":
			want[kindFsgofer], want[kindSealgofer], want[kindSealed] = true, true, true
		case "both":
			want[kindFsgofer], want[kindSealgofer] = true, true
		case "fsgofer":
			want[kindFsgofer] = true
		case "sealgofer", "passthrough":
			want[kindSealgofer] = true
		case "sealed":
			want[kindSealed] = true
		default:
			return nil, fmt.Errorf("--server: unknown server %q (fsgofer, sealgofer, sealed, both, all)", part)
		}
	}
	if want[kindSealed] && !want[kindSealgofer] && !want[kindFsgofer] {
		fmt.Println("interop: sealed mode compares with a passthrough server: fsgofer added as the reference")
		want[kindFsgofer] = true
	}
	var kinds []serverKind
	for _, k := range []serverKind{kindFsgofer, kindSealgofer, kindSealed} {
		if want[k] {
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}

// referencePassthrough picks the passthrough result a sealed run is compared
// with: sealgofer's HostProvider if it ran, else fsgofer.
func referencePassthrough(results []runResult) *runResult {
	var ref *runResult
	for i := range results {
		switch results[i].kind {
		case kindSealgofer:
			return &results[i]
		case kindFsgofer:
			ref = &results[i]
		}
	}
	return ref
}

func referenceTree(results []runResult) *treeSnap {
	if r := referencePassthrough(results); r != nil {
		return r.tree
	}
	return nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportScenario prints one line per scenario (plus indented details) and
// returns whether it passed on every server and the servers agreed.
func reportScenario(name string, results []runResult, verbose bool) bool {
	ok := true
	var parts, details []string
	for _, r := range results {
		state := "pass"
		if len(r.failures) > 0 {
			state = "FAIL"
			ok = false
			for _, f := range r.failures {
				details = append(details, fmt.Sprintf("%s: %s", r.kind, f))
			}
		}
		parts = append(parts, fmt.Sprintf("%s=%s(%.2fs)", r.kind, state, r.elapsed.Seconds()))
		if verbose || len(r.failures) > 0 {
			for _, n := range r.notes {
				details = append(details, fmt.Sprintf("%s note: %s", r.kind, n))
			}
		}
	}
	// Pairs compared: fsgofer with sealgofer (passthrough), and the sealed
	// store with its passthrough reference.
	var pairs [][2]*runResult
	var fs, sg, sd *runResult
	for i := range results {
		switch results[i].kind {
		case kindFsgofer:
			fs = &results[i]
		case kindSealgofer:
			sg = &results[i]
		case kindSealed:
			sd = &results[i]
		}
	}
	if fs != nil && sg != nil {
		pairs = append(pairs, [2]*runResult{fs, sg})
	}
	if sd != nil {
		if ref := referencePassthrough(results); ref != nil {
			pairs = append(pairs, [2]*runResult{ref, sd})
		}
		for _, n := range sd.docNotes {
			details = append(details, fmt.Sprintf("%s: %s", sd.kind, n))
		}
		if referenceTree(results) == nil {
			details = append(details, "sealed: no passthrough tree to compare the export with")
		}
	}
	for _, p := range pairs {
		diffs, notes := compareObservations(p[0].obs, p[1].obs, p[0].kind, p[1].kind)
		label := fmt.Sprintf("%s~%s", p[0].kind, p[1].kind)
		if len(diffs) > 0 {
			ok = false
			parts = append(parts, label+"=DISAGREE")
			for _, d := range diffs {
				details = append(details, label+" differs: "+d)
			}
		} else {
			parts = append(parts, label+"=agree")
		}
		details = append(details, notes...)
	}
	if len(pairs) == 0 && verbose {
		for _, k := range results[0].obs.order {
			details = append(details, fmt.Sprintf("observed %s = %s", k, results[0].obs.values[k]))
		}
	}
	status := "ok  "
	if !ok {
		status = "FAIL"
	}
	fmt.Printf("%s %-18s %s\n", status, name, strings.Join(parts, " "))
	for _, d := range details {
		fmt.Println(indent(d, "      "))
	}
	return ok
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "interop: "+format+"\n", args...)
	fmt.Println("interop: 0 passed, 1 failed")
	os.Exit(2)
}
