package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"
)

// childSocketFD is where the served socket lands in the sealgofer process:
// the first descriptor after stdin, stdout and stderr.
const childSocketFD = 3

// startServer starts `binary serve --fd 3 …` for one mount and returns its
// PID (as seen in the gofer's PID namespace).
//
// The child gets:
//   - its own mount namespace (CLONE_NEWNS), so the stock gofer's later
//     pivot_root into an empty tmpfs does not move the child's root too, and
//     the host paths of store, key file and scratch stay reachable to it;
//   - only stdin (/dev/null), stdout and stderr (log), and the socket on fd 3.
//     The gofer holds many inheritable descriptors donated by runsc (spec,
//     mounts pipe, the other mounts' sockets); a child holding the write end of
//     the mounts pipe would keep the sandbox waiting for EOF forever;
//   - an empty environment, like the gofer's own re-exec;
//   - a /proc of the gofer's PID namespace (serverexec.go).
//
// It lives in the gofer's PID namespace, whose init is the gofer: when runsc
// SIGKILLs the gofer at container destruction, the child dies with it.
func startServer(binary string, args []string, ioFD int, log *os.File) (int, error) {
	// Hand the child a private duplicate: an *os.File closes its descriptor
	// when garbage collected, so it must never wrap ioFD itself.
	dup, err := unix.FcntlInt(uintptr(ioFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("duplicating io fd %d: %w", ioFD, err)
	}
	socket := os.NewFile(uintptr(dup), "sealgofer io socket")
	defer socket.Close()

	restore, err := markAllCloseOnExec()
	defer restore()
	if err != nil {
		return 0, err
	}

	path, argv := binary, append([]string{binary}, args...)
	if selfExecutable != "" {
		// Through serverexec.go: a /proc that matches the server's PID namespace.
		path, argv = selfExecutable, append([]string{selfExecutable, serverExecCommand}, argv...)
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        argv,
		Env:         []string{},
		Stdout:      log,
		Stderr:      log,
		ExtraFiles:  []*os.File{socket}, // becomes fd 3 (childSocketFD)
		SysProcAttr: &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWNS},
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", binary, err)
	}
	pid := cmd.Process.Pid
	// Nobody waits for it: the gofer exits (taking the namespace with it)
	// once the sandbox is gone; until then a finished child is a zombie.
	_ = cmd.Process.Release()
	return pid, nil
}

// markAllCloseOnExec sets FD_CLOEXEC on every descriptor above stderr that
// lacks it and returns a function that clears it again. Go's exec only
// arranges the descriptors it is given; the rest would leak into the child.
func markAllCloseOnExec() (restore func(), err error) {
	var changed []int
	restore = func() {
		for _, fd := range changed {
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
				_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags&^unix.FD_CLOEXEC)
			}
		}
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return restore, fmt.Errorf("listing open descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // EBADF: the directory's own descriptor, closed by now
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil {
			return restore, fmt.Errorf("marking fd %d close-on-exec: %w", fd, err)
		}
		changed = append(changed, fd)
	}
	return restore, nil
}

// replaceWithDeadSocket puts a socket whose peer is already closed at fd, so
// the stock gofer, which still expects a socket there, reads EOF at once and
// drops that connection without serving anything. The descriptor stays
// inheritable: the gofer re-executes itself and looks for it again.
func replaceWithDeadSocket(fd int) error {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	defer unix.Close(pair[0])
	if err := unix.Close(pair[1]); err != nil {
		return fmt.Errorf("closing dead socket's peer: %w", err)
	}
	if err := unix.Dup3(pair[0], fd, 0); err != nil {
		return fmt.Errorf("dup3 onto fd %d: %w", fd, err)
	}
	return nil
}
