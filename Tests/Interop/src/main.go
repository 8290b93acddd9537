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

	"gvisor.dev/gvisor/pkg/log"
)

var allScenarios = []Scenario{
	scenarioMount,
	scenarioWalk,
	scenarioStat,
	scenarioCreate,
	scenarioDonatedFD,
	scenarioPReadPWrite,
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
	server := flag.String("server", "both", "server(s) to test: sealgofer, fsgofer or both")
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

	var kinds []serverKind
	switch *server {
	case "both":
		kinds = []serverKind{kindFsgofer, kindSealgofer}
	case "fsgofer":
		kinds = []serverKind{kindFsgofer}
	case "sealgofer":
		kinds = []serverKind{kindSealgofer}
	default:
		fatalf("--server must be sealgofer, fsgofer or both, not %q", *server)
	}
	opts := startOptions{sealgoferBin: *sealgoferBin}
	for _, k := range kinds {
		if k == kindSealgofer {
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
		code := runBenchmarks(kinds, base, opts, *benchSeconds, *benchRepeats)
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
	passed, failed := 0, 0
	for _, sc := range selected {
		results := make([]runResult, 0, len(kinds))
		for _, k := range kinds {
			results = append(results, runScenario(sc, k, base, opts))
		}
		if reportScenario(sc.Name, results, *verbose) {
			passed++
		} else {
			failed++
		}
	}
	fmt.Printf("interop: %d passed, %d failed\n", passed, failed)
	if !*keep {
		os.RemoveAll(base)
	}
	if failed > 0 {
		os.Exit(1)
	}
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
	if len(results) == 2 {
		diffs, notes := compareObservations(results[0].obs, results[1].obs, results[0].kind, results[1].kind)
		if len(diffs) > 0 {
			ok = false
			parts = append(parts, "DISAGREE")
			for _, d := range diffs {
				details = append(details, "differs: "+d)
			}
		} else {
			parts = append(parts, "agree")
		}
		details = append(details, notes...)
	} else if verbose {
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
