package main

import (
	"os"
	"strconv"
	"time"

	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"
	"gvisor.dev/gvisor/runsc/specutils"
)

// runAttached is `runsc run` (attached, not a restore) for a bundle with
// sealgofer mounts: the steps of the stock command (cmd.Run → container.Run:
// New, Start, Wait, Destroy) with one added between Wait and Destroy — give
// the gofer serverExitGrace to exit by itself, which it does once its
// sealgofer servers have committed and exited (see serverwait.go). Destroy
// SIGKILLs a gofer that is still there; it then finds this one gone.
func runAttached(f *flag.FlagSet, conf *config.Config, spec *specs.Spec, bundleDir string, waitStatus *unix.WaitStatus) subcommands.ExitStatus {
	id := f.Arg(0)
	specutils.LogSpec(spec)
	c, err := container.New(conf, container.Args{
		ID:            id,
		Spec:          spec,
		BundleDir:     bundleDir,
		ConsoleSocket: flagValue(f, "console-socket"),
		PIDFile:       flagValue(f, "pid-file"),
		UserLog:       flagValue(f, "user-log"),
		Attached:      true,
	})
	if err != nil {
		return util.Errorf("running container: creating container: %v", err)
	}
	defer c.Destroy()
	if err := c.Start(conf); err != nil {
		return util.Errorf("running container: starting container: %v", err)
	}
	ws, waitErr := c.Wait()
	// Also after a failed wait (say the sandbox was killed): the servers still
	// see EOF and commit.
	awaitGoferChild(c.GoferPid, serverExitGrace)
	if waitErr != nil {
		return util.Errorf("running container: %v", waitErr)
	}
	*waitStatus = ws
	return subcommands.ExitSuccess
}

// awaitGoferChild waits up to grace for the gofer, a child of this process, to
// exit, without reaping it (Destroy does that).
func awaitGoferChild(pid int, grace time.Duration) {
	if pid == 0 {
		return
	}
	done := make(chan error, 1)
	go func() {
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			log.Warningf("sealgofer: waiting for gofer %d: %v", pid, err)
		}
	case <-time.After(grace):
		log.Warningf("sealgofer: gofer %d still running %v after the container exited; destroying it", pid, grace)
	}
}

// awaitGoferExit is awaitGoferChild for a gofer that is not our child
// (`delete` of a container created by another process): polls for it.
func awaitGoferExit(pid int, grace time.Duration) {
	if pid == 0 {
		return
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if err := unix.Kill(pid, 0); err == unix.ESRCH {
			return
		}
		if isZombie(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Warningf("sealgofer: gofer %d still running %v after the container stopped; destroying it", pid, grace)
}

// isZombie reports whether pid has exited but not been reaped yet.
func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S …": the state follows the last ')'.
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == ')' {
			return i+2 < len(data) && (data[i+2] == 'Z' || data[i+2] == 'X')
		}
	}
	return false
}

func flagValue(f *flag.FlagSet, name string) string {
	if fl := f.Lookup(name); fl != nil {
		return fl.Value.String()
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }
