package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The server lives in the gofer's PID namespace but, in the mount namespace
// copied from the host, sees the host's /proc, where its own PIDs and thread
// IDs name other processes or nothing. Code that looks itself up by number
// then fails: libdispatch's worker-pool monitor opens /proc/<tid>/stat for
// its threads and crashes the process ("workq: registered worker exited
// prematurely", a ud2 in _dispatch_workq_monitor_pools) when that fails, which
// killed sealgofer under load. So the server is started through this binary
// once more: `runsc-sealgofer sealgofer-server-exec BINARY ARGS…` mounts a
// procfs of the right PID namespace on /proc in the server's own mount
// namespace (private to it: / is a slave there, nothing propagates back) and
// executes the server.
const serverExecCommand = "sealgofer-server-exec"

// selfExecutable is this binary, for re-executing it as serverExecCommand; set
// in main (empty in unit tests: the server is then executed directly).
var selfExecutable string

// serverExec is the whole of the sealgofer-server-exec mode; it never returns.
func serverExec(args []string) {
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "sealgofer-server-exec: no server binary")
		os.Exit(2)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fmt.Fprintf(os.Stderr, "sealgofer-server-exec: mounting /proc for the server's PID namespace: %v\n", err)
		os.Exit(1)
	}
	err := unix.Exec(args[0], args, []string{})
	fmt.Fprintf(os.Stderr, "sealgofer-server-exec: executing %s: %v\n", args[0], err)
	os.Exit(1)
}
