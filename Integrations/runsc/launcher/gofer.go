package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
	"gvisor.dev/gvisor/runsc/specutils"
)

// handedOverFlag marks the gofer's re-execution after the hand-over: the
// stock gofer re-executes itself once (after dropping capabilities) with
// os.Args plus a few flags and an empty environment, so the marker travels
// as an argument. Its value lists the sealgofer PIDs, for the logs.
const handedOverFlag = "sealgofer-handed-over"

// sealGofer is runsc's `gofer` subcommand with one step in front: mounts that
// the annotations assign to sealgofer get their socket handed to a
// `sealgofer serve` child, and the stock gofer a dead socket in their place.
// Everything else, including serving all other mounts, is the stock command.
type sealGofer struct {
	stock        cmd.Gofer
	handedOver   string
	serverPidfds string
}

func (g *sealGofer) Name() string { return g.stock.Name() }
func (g *sealGofer) Synopsis() string {
	return g.stock.Synopsis() + " (sealgofer mounts served by sealgofer)"
}
func (g *sealGofer) Usage() string { return g.stock.Usage() }

func (g *sealGofer) SetFlags(f *flag.FlagSet) {
	g.stock.SetFlags(f)
	f.StringVar(&g.handedOver, handedOverFlag, "", "internal: sealgofer mounts were handed over to these PIDs")
	f.StringVar(&g.serverPidfds, serverPidfdsFlag, "", "internal: inherited pidfds of the sealgofer servers")
}

func (g *sealGofer) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	if g.handedOver != "" {
		log.Infof("sealgofer: mounts already handed over to PIDs %s", g.handedOver)
	} else if err := g.handOver(f, args[0].(*config.Config)); err != nil {
		util.Fatalf("sealgofer: %v", err)
	}
	// The first invocation never gets past this: the stock gofer re-executes
	// itself. In the re-execution it returns once the sandbox has closed every
	// connection; the servers are then committing what they were sent, and
	// die with this process (PID 1 of their namespace): wait for them.
	status := g.stock.Execute(ctx, f, args...)
	if pidfds := parseFDs(g.serverPidfds); len(pidfds) > 0 {
		log.Infof("sealgofer: waiting for servers (pidfds %s) to exit", g.serverPidfds)
		awaitServers(pidfds, serverExitGrace)
	}
	return status
}

// handOver runs in the first gofer invocation, before the stock code sets up
// its root, while the host filesystem is still in view.
func (g *sealGofer) handOver(f *flag.FlagSet, conf *config.Config) error {
	bundleDir := f.Lookup("bundle").Value.String()
	specFD, err := strconv.Atoi(f.Lookup("spec-fd").Value.String())
	if err != nil || specFD < 0 {
		return nil // the stock command reports its own usage errors
	}
	ioFDs, ok := f.Lookup("io-fds").Value.(interface{ GetArray() []int })
	if !ok {
		return fmt.Errorf("runsc's --io-fds flag has an unexpected type %T", f.Lookup("io-fds").Value)
	}

	spec, err := readSpec(bundleDir, specFD, conf)
	if err != nil {
		return err
	}
	settings, err := parseAnnotations(spec.Annotations)
	if err != nil {
		return err
	}
	if len(settings.Mounts) == 0 {
		return nil
	}
	plan, err := planHandovers(spec, ioFDs.GetArray(), settings)
	if err != nil {
		return err
	}
	if fd, _ := strconv.Atoi(f.Lookup("sync-userns-fd").Value.String()); fd >= 0 {
		// Rootless runsc: the gofer's uid maps are not written yet here.
		return fmt.Errorf("sealgofer mounts need runsc run as root (rootless mode is not supported)")
	}
	if f.Lookup("setup-root").Value.String() == "true" {
		// The stock gofer does this first thing too (setupRootFS). Doing it
		// before the child copies the mount table means that nothing the
		// gofer mounts later propagates into the child's namespace, and
		// nothing the child mounts propagates back out to the host.
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("making mounts slave: %w", err)
		}
	}

	binary := settings.Binary
	if binary == "" {
		binary = defaultSealgofer
	}
	logFile, err := openLog(settings.Log)
	if err != nil {
		return err
	}
	if logFile != nil {
		defer logFile.Close()
	}

	var pids []string
	var pidfds []int
	for _, h := range plan {
		args := h.Mount.serveArgs(childSocketFD, h.Readonly, settings.LogLevel)
		pid, err := startServer(binary, args, h.IOFD, logFile)
		if err != nil {
			return fmt.Errorf("mount %q: %w", h.Mount.Destination, err)
		}
		if err := replaceWithDeadSocket(h.IOFD); err != nil {
			return fmt.Errorf("mount %q: %w", h.Mount.Destination, err)
		}
		log.Infof("sealgofer: %q (io fd %d) served by PID %d: %s %s", h.Mount.Destination, h.IOFD, pid, binary, strings.Join(args, " "))
		pids = append(pids, strconv.Itoa(pid))
		pidfd, err := openServerPidfd(pid)
		if err != nil {
			return fmt.Errorf("mount %q: %w", h.Mount.Destination, err)
		}
		pidfds = append(pidfds, pidfd)
	}
	if err := makeInheritable(pidfds); err != nil {
		return err
	}
	// The stock gofer re-executes itself with os.Args; tell that run not to
	// hand over again (its sockets are dead ones by now), and which servers
	// to wait for before exiting.
	os.Args = append(os.Args, "--"+handedOverFlag+"="+strings.Join(pids, ","),
		"--"+serverPidfdsFlag+"="+formatFDs(pidfds))
	return nil
}

// readSpec reads the spec the way the stock gofer will, from a private
// duplicate of --spec-fd: an *os.File closes its descriptor when garbage
// collected, and the stock gofer (and its re-execution) still needs the
// original. ReadSpecFromFile seeks to the start first, so sharing the file
// offset does no harm.
func readSpec(bundleDir string, specFD int, conf *config.Config) (*specs.Spec, error) {
	dup, err := unix.FcntlInt(uintptr(specFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicating spec fd %d: %w", specFD, err)
	}
	file := os.NewFile(uintptr(dup), "spec file (sealgofer copy)")
	defer file.Close()
	spec, err := specutils.ReadSpecFromFile(bundleDir, file, conf)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	return spec, nil
}

// openLog opens the annotation's log file for appending, or returns nil (the
// child then inherits nothing: the gofer's own stdio is /dev/null).
func openLog(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening sealgofer log: %w", err)
	}
	return file, nil
}
