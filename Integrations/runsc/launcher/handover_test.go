package main

import (
	"encoding/json"
	"flag"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// childReport is what the helper child (this test binary, re-executed by
// startServer) tells the parent over the handed socket.
type childReport struct {
	FDs   map[int]string // fd -> what /proc/self/fd/N points to
	MntNS string
	Env   []string
	Args  []string
}

// TestChildHelper is not a test: it is the child side of TestStartServer.
// startServer gives the child an empty environment, so the mode is chosen by
// a positional argument.
func TestChildHelper(t *testing.T) {
	if flag.Arg(0) != "sealgofer-test-child" {
		t.Skip("helper process only")
	}
	r := childReport{FDs: map[int]string{}}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			r.FDs[fd], _ = os.Readlink("/proc/self/fd/" + e.Name())
		}
	}
	r.MntNS, _ = os.Readlink("/proc/self/ns/mnt")
	r.Env = os.Environ()
	r.Args = flag.Args()
	socket := os.NewFile(childSocketFD, "socket")
	_ = json.NewEncoder(socket).Encode(r)
	os.Exit(0)
}

func TestStartServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for CLONE_NEWNS")
	}
	// Like runsc's donated descriptors: inheritable (no close-on-exec).
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	sandboxEnd, goferEnd := pair[0], pair[1]
	defer unix.Close(sandboxEnd)
	defer unix.Close(goferEnd)
	// A bystander that must not leak into the child (think --mounts-fd).
	var bystander [2]int
	if err := unix.Pipe2(bystander[:], 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(bystander[0])
	defer unix.Close(bystander[1])

	bystanderTarget := fdTarget(t, bystander[1])
	goferTarget := fdTarget(t, goferEnd)

	args := []string{"-test.run=^TestChildHelper$", "sealgofer-test-child", "--fd", "3"}
	pid, err := startServer(os.Args[0], args, goferEnd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := replaceWithDeadSocket(goferEnd); err != nil {
		t.Fatal(err)
	}

	// The parent's hold on the socket is gone (dead socket in its place), so
	// EOF on the sandbox end arrives once the child exits.
	report, err := readToEOF(sandboxEnd)
	if err != nil {
		t.Fatalf("reading child report: %v", err)
	}
	var r childReport
	if err := json.Unmarshal(report, &r); err != nil {
		t.Fatalf("child report %q: %v", report, err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("child: %v, status %v", err, ws)
	}

	// The socket is on fd 3 and nowhere else; the bystander did not leak.
	// (The child's Go runtime opens a few descriptors of its own.)
	socketInode := fdTarget(t, sandboxEnd) // "socket:[N]" of the other end
	goferInode := r.FDs[childSocketFD]
	if goferInode != goferTarget {
		t.Errorf("child fd 3 is %q, want the gofer end of the socket pair", goferInode)
	}
	for fd, target := range r.FDs {
		if fd != childSocketFD && target == goferInode {
			t.Errorf("child holds the socket twice, on fd %d too", fd)
		}
		if target == bystanderTarget || target == socketInode {
			t.Errorf("child inherited fd %d (%s)", fd, target)
		}
	}
	ownNS, _ := os.Readlink("/proc/self/ns/mnt")
	if r.MntNS == "" || r.MntNS == ownNS {
		t.Errorf("child mount namespace %q, parent's %q: want a new one", r.MntNS, ownNS)
	}
	if len(r.Env) != 0 {
		t.Errorf("child environment: %q, want empty", r.Env)
	}
	if len(r.Args) != 3 || r.Args[1] != "--fd" || r.Args[2] != "3" {
		t.Errorf("child args: %q", r.Args)
	}

	// Close-on-exec flags of the parent's descriptors are as before.
	for _, fd := range []int{bystander[0], bystander[1], goferEnd} {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			t.Errorf("fd %d: flags %#x, %v: want inheritable again", fd, flags, err)
		}
	}
}

func TestDeadSocketReadsEOF(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	if err := replaceWithDeadSocket(pair[1]); err != nil {
		t.Fatal(err)
	}
	// The fd number still holds a socket, now with nobody on the other side.
	if _, err := unix.GetsockoptInt(pair[1], unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
		t.Fatalf("fd %d is no socket any more: %v", pair[1], err)
	}
	n, err := unix.Read(pair[1], make([]byte, 1))
	if n != 0 || err != nil {
		t.Fatalf("read from dead socket: n=%d err=%v, want EOF", n, err)
	}
	// And the original peer sees EOF too: the old socket was closed.
	if rest, err := readToEOF(pair[0]); err != nil || len(rest) != 0 {
		t.Fatalf("peer: %q, %v", rest, err)
	}
}

// readToEOF reads fd until end of file without wrapping it in an *os.File
// (whose finalizer would close the descriptor behind the test's back).
func readToEOF(fd int) ([]byte, error) {
	var all []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return all, err
		}
		if n == 0 {
			return all, nil
		}
		all = append(all, buf[:n]...)
	}
}

func fdTarget(t *testing.T, fd int) string {
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	return target
}
