package main

import (
	"flag"
	"fmt"
	"os"

	"gvisor.dev/gvisor/pkg/unet"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/fsgofer"
)

// fakeServe lets this binary stand in for `sealgofer serve --fd N
// --passthrough DIR [--readonly]` by serving gVisor's fsgofer on fd N. It
// exists to self-test the child-process path of the harness (fd passing,
// exit after hang-up, comparison) independently of sealgofer:
//
//	Tests/Interop/run --sealgofer Tests/Interop/bin/interop
func fakeServe(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	fd := fs.Int("fd", -1, "connected lisafs socket")
	dir := fs.String("passthrough", "", "directory to serve")
	ro := fs.Bool("readonly", false, "read-only mount")
	_ = fs.Parse(args)
	if *fd < 0 || *dir == "" {
		fmt.Fprintln(os.Stderr, "fake serve: need --fd and --passthrough")
		os.Exit(2)
	}
	if err := fsgofer.OpenProcSelfFD(); err != nil {
		fmt.Fprintln(os.Stderr, "fake serve:", err)
		os.Exit(1)
	}
	server := fsgofer.NewLisafsServer(fsgofer.Config{ROMount: *ro, HostUDS: config.HostUDSAll, HostFifo: config.HostFifoOpen})
	sock, err := unet.NewSocket(*fd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake serve:", err)
		os.Exit(1)
	}
	conn, err := server.CreateConnection(sock, *dir, *ro)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake serve:", err)
		os.Exit(1)
	}
	server.StartConnection(conn)
	server.Wait()
	os.Exit(0)
}
