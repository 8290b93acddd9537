package main

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/unet"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/fsgofer"
)

var procSelfOnce sync.Once
var procSelfErr error

// serveFsgoferInProcess serves gVisor's own fsgofer lisafs server on
// serverFD from goroutines of this process. It is configured like
// `runsc gofer` with --host-uds=all --host-fifo=open so that sockets and
// FIFOs can be exercised. The client still talks to it over the socket and
// flipcall channels, exactly as with an out-of-process gofer.
func serveFsgoferInProcess(serverFD int, dir string, readonly bool) error {
	procSelfOnce.Do(func() { procSelfErr = fsgofer.OpenProcSelfFD() })
	if procSelfErr != nil {
		return procSelfErr
	}
	server := fsgofer.NewLisafsServer(fsgofer.Config{
		ROMount:  readonly,
		HostUDS:  config.HostUDSAll,
		HostFifo: config.HostFifoOpen,
	})
	sock, err := unet.NewSocket(serverFD)
	if err != nil {
		unix.Close(serverFD)
		return fmt.Errorf("unet.NewSocket(server end): %v", err)
	}
	conn, err := server.CreateConnection(sock, dir, readonly)
	if err != nil {
		sock.Close()
		return fmt.Errorf("fsgofer CreateConnection: %v", err)
	}
	server.StartConnection(conn)
	return nil
}
