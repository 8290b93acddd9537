// Command sealgofer-standin stands in for `sealgofer serve` while that is
// being written: it accepts the same command line the launcher passes and
// serves a --passthrough directory with gVisor's own lisafs file server
// (runsc/fsgofer), unencrypted. It exists to prove the launcher's hand-over
// mechanism in a real sandbox, nothing more.
package main

import (
	"flag"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/unet"
	"gvisor.dev/gvisor/runsc/fsgofer"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fail("usage: %s serve --fd N --passthrough DIR [--readonly]", os.Args[0])
	}
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	fd := flags.Int("fd", -1, "connected lisafs socket")
	dir := flags.String("passthrough", "", "host directory to serve")
	readonly := flags.Bool("readonly", false, "refuse writes")
	store := flags.String("store", "", "sealed store (unsupported by the stand-in)")
	flags.String("key-file", "", "key file (unsupported by the stand-in)")
	flags.String("scratch", "", "scratch directory (ignored by the stand-in)")
	_ = flags.Parse(os.Args[2:])
	if *fd < 0 || *dir == "" || *store != "" {
		fail("the stand-in needs --fd and --passthrough (sealed stores need the real sealgofer)")
	}

	fmt.Fprintf(os.Stderr, "sealgofer-standin[%d]: serving %s on fd %d (readonly %t)\n", os.Getpid(), *dir, *fd, *readonly)
	// Whether /proc belongs to this process's PID namespace (sandbox-test checks it).
	self, _ := os.Readlink("/proc/self")
	fmt.Fprintf(os.Stderr, "sealgofer-standin[%d]: /proc/self -> %s\n", os.Getpid(), self)
	log.SetLevel(log.Warning)
	// Like the stock gofer: keep file modes exactly as the sandbox sends them.
	unix.Umask(0)
	if err := fsgofer.OpenProcSelfFD(); err != nil {
		fail("%v", err)
	}
	socket, err := unet.NewSocket(*fd)
	if err != nil {
		fail("socket fd %d: %v", *fd, err)
	}
	server := fsgofer.NewLisafsServer(fsgofer.Config{})
	conn, err := server.CreateConnection(socket, *dir, *readonly)
	if err != nil {
		fail("connection: %v", err)
	}
	server.StartConnection(conn)
	server.Wait()
	server.Destroy()
	fmt.Fprintf(os.Stderr, "sealgofer-standin[%d]: connection closed, exiting\n", os.Getpid())
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sealgofer-standin: "+format+"\n", args...)
	os.Exit(2)
}
