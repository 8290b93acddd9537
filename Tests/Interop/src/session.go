package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/lisafs"
	"gvisor.dev/gvisor/pkg/unet"
)

// serverKind names one of the lisafs servers under test.
type serverKind string

const (
	// kindFsgofer is gVisor's own fsgofer, served in-process.
	kindFsgofer serverKind = "fsgofer"
	// kindSealgofer is `sealgofer serve --passthrough DIR` (HostProvider).
	kindSealgofer serverKind = "sealgofer"
	// kindSealed is `sealgofer serve --store S --key-file K` (SealedProvider)
	// on a fresh store per scenario; see sealed.go.
	kindSealed serverKind = "sealed"
)

// isPassthrough reports whether the host directory of the kind is the
// plaintext tree the client sees.
func (k serverKind) isPassthrough() bool { return k != kindSealed }

// Session is one mounted lisafs connection: the client end plays the sentry,
// the other socket end is served by either a sealgofer child or an in-process
// fsgofer.
type Session struct {
	Kind serverKind
	// Dir is the host directory that is the mount root (passthrough kinds).
	// For kindSealed it is the emptied staging directory that Setup filled
	// and that was imported into the store; paths next to it (outsideDir)
	// are real host paths.
	Dir    string
	Sealed *sealedStore // kindSealed only
	Client *lisafs.Client
	Root   lisafs.Inode
	RootFD lisafs.ClientFD

	child     *exec.Cmd
	childLog  *tailBuffer
	childDone chan error
	closeOnce sync.Once
	exitErr   error
}

const mountTimeout = 30 * time.Second

// startOptions configure how a server is started.
type startOptions struct {
	readonly     bool
	sealgoferBin string
	sealed       *sealedStore // the store to serve (kindSealed)
	sealedArgs   []string     // extra serve arguments (kindSealed)
}

// startSession starts a server of the given kind on dir and mounts it.
func startSession(kind serverKind, dir string, opts startOptions) (*Session, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %v", err)
	}
	clientFD, serverFD := fds[0], fds[1]
	s := &Session{Kind: kind, Dir: dir, Sealed: opts.sealed}
	switch kind {
	case kindFsgofer:
		if err := serveFsgoferInProcess(serverFD, dir, opts.readonly); err != nil {
			unix.Close(clientFD)
			unix.Close(serverFD)
			return nil, err
		}
	case kindSealgofer, kindSealed:
		if err := s.spawnSealgofer(serverFD, dir, opts); err != nil {
			unix.Close(clientFD)
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown server %q", kind)
	}
	sock, err := unet.NewSocket(clientFD)
	if err != nil {
		unix.Close(clientFD)
		s.Close()
		return nil, fmt.Errorf("unet.NewSocket: %v", err)
	}
	// A server that never answers Mount must not hang the whole suite.
	type mounted struct {
		client *lisafs.Client
		root   lisafs.Inode
		err    error
	}
	ch := make(chan mounted, 1)
	go func() {
		c, r, err := lisafs.NewClient(sock)
		ch <- mounted{c, r, err}
	}()
	var m mounted
	select {
	case m = <-ch:
	case <-time.After(mountTimeout):
		s.Kill()
		sock.Close()
		return nil, fmt.Errorf("mount (lisafs.NewClient) did not complete within %v (server killed)%s", mountTimeout, s.childLogSuffix())
	}
	if m.err != nil {
		s.Close()
		return nil, fmt.Errorf("mount (lisafs.NewClient): %v%s", m.err, s.childLogSuffix())
	}
	s.Client = m.client
	s.Root = m.root
	s.RootFD = m.client.NewFD(m.root.ControlFD)
	return s, nil
}

// spawnSealgofer runs `sealgofer serve --fd 3 --passthrough DIR` (or, for
// kindSealed, `--store S --key-file K --scratch DIR`) with the server socket
// end as fd 3 (ExtraFiles[0]).
func (s *Session) spawnSealgofer(serverFD int, dir string, opts startOptions) error {
	args := []string{"serve", "--fd", "3", "--passthrough", dir}
	if s.Kind == kindSealed {
		if opts.sealed == nil {
			unix.Close(serverFD)
			return fmt.Errorf("sealed session without a store")
		}
		args = []string{"serve", "--fd", "3", "--store", opts.sealed.store, "--key-file", opts.sealed.keyFile,
			"--scratch", opts.sealed.scratch}
		args = append(args, opts.sealedArgs...)
	}
	if opts.readonly {
		args = append(args, "--readonly")
	}
	cmd := exec.Command(opts.sealgoferBin, args...)
	f := os.NewFile(uintptr(serverFD), "lisafs-server-end")
	cmd.ExtraFiles = []*os.File{f}
	s.childLog = newTailBuffer(64 * 1024)
	cmd.Stdout = s.childLog
	cmd.Stderr = s.childLog
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %v", opts.sealgoferBin, err)
	}
	f.Close() // the child holds its own copy
	s.child = cmd
	s.childDone = make(chan error, 1)
	go func() {
		err := cmd.Wait()
		addServeCPU(s.Kind, cmd.ProcessState)
		s.childDone <- err
	}()
	return nil
}

// Close hangs up on the server. For a sealgofer child it waits for the child
// to exit and records how it exited (a crash at hang-up is a bug too).
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		if s.Client != nil {
			s.Client.Close()
		}
		if s.child == nil {
			return
		}
		select {
		case err := <-s.childDone:
			if err != nil {
				s.exitErr = fmt.Errorf("%s exited badly after hang-up: %v%s", s.Kind, err, s.childLogSuffix())
			}
		case <-time.After(10 * time.Second):
			_ = s.child.Process.Signal(syscall.SIGKILL)
			<-s.childDone
			s.exitErr = fmt.Errorf("%s did not exit within 10s of client hang-up (killed)%s", s.Kind, s.childLogSuffix())
		}
	})
	return s.exitErr
}

// Kill forcibly stops a sealgofer child (used when a scenario times out).
func (s *Session) Kill() {
	if s.child != nil && s.child.Process != nil {
		_ = s.child.Process.Signal(syscall.SIGKILL)
	}
}

func (s *Session) childLogSuffix() string {
	if s.childLog == nil {
		return ""
	}
	tail := s.childLog.Tail(20)
	if tail == "" {
		return ""
	}
	return "\n      server log tail:\n" + indent(tail, "        ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

// Tail returns the last n lines.
func (b *tailBuffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := bytes.Split(bytes.TrimRight(b.buf, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
