package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/log"
)

// Durability at container exit.
//
// A sealgofer server commits what the sandbox wrote when its connection
// reaches EOF, i.e. when the sandbox exits. It lives in the gofer's PID
// namespace, so it dies whenever the gofer does. Two things used to kill it
// before it was done:
//   - the stock gofer returns as soon as its own connections are closed (the
//     same moment), and the process, PID 1 of the namespace, exits;
//   - runsc SIGKILLs the gofer right after the container exits (Destroy, in
//     `run` and `delete`).
// So the gofer waits for its servers before exiting (awaitServers, with pidfds
// opened at hand-over: its seccomp filter allows ppoll, not wait4), and `run`
// and `delete` give the gofer time to exit by itself before destroying the
// container (run.go, delete.go).

// serverExitGrace bounds how long the gofer waits for its servers, and `run`
// and `delete` for the gofer, after the sandbox is gone.
const serverExitGrace = 60 * time.Second

// serverPidfdsFlag carries the pidfds of the servers across the gofer's
// re-execution (they are inherited: close-on-exec is cleared).
const serverPidfdsFlag = "sealgofer-server-pidfds"

// openServerPidfd returns an inheritable pidfd for the server process pid.
func openServerPidfd(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open(%d): %w", pid, err)
	}
	return fd, nil
}

// makeInheritable clears close-on-exec on fds (after all servers are started,
// so no server inherits another's pidfd).
func makeInheritable(fds []int) error {
	for _, fd := range fds {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil {
			_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags&^unix.FD_CLOEXEC)
		}
		if err != nil {
			return fmt.Errorf("clearing close-on-exec on pidfd %d: %w", fd, err)
		}
	}
	return nil
}

func formatFDs(fds []int) string {
	s := make([]string, len(fds))
	for i, fd := range fds {
		s[i] = strconv.Itoa(fd)
	}
	return strings.Join(s, ",")
}

func parseFDs(value string) []int {
	var fds []int
	for _, field := range strings.Split(value, ",") {
		if fd, err := strconv.Atoi(field); err == nil && fd >= 0 {
			fds = append(fds, fd)
		}
	}
	return fds
}

// awaitServers blocks until every pidfd reports its process gone, or until
// grace has passed. Returns the number still running.
func awaitServers(pidfds []int, grace time.Duration) int {
	deadline := time.Now().Add(grace)
	pending := append([]int(nil), pidfds...)
	for len(pending) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		polls := make([]unix.PollFd, len(pending))
		for i, fd := range pending {
			polls[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		}
		timeout := unix.NsecToTimespec(left.Nanoseconds())
		n, err := unix.Ppoll(polls, &timeout, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			log.Warningf("sealgofer: waiting for servers: ppoll: %v", err)
			break
		}
		if n == 0 {
			continue
		}
		var still []int
		for _, p := range polls {
			if p.Revents == 0 {
				still = append(still, int(p.Fd))
			}
		}
		pending = still
	}
	if len(pending) > 0 {
		log.Warningf("sealgofer: %d server(s) still running after %v; exiting anyway", len(pending), grace)
	}
	return len(pending)
}
