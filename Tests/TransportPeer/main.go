// transportpeer is the client half of the Swift transport tests: it talks to
// a Swift echo server over the lisafs socket given as its stdin, using
// gVisor's own unet, flipcall and fdchannel packages. It exits 0 only if
// every check of the chosen scenario held.
//
// Usage: transportpeer SCENARIO MAX_MESSAGE_SIZE [ROUNDS]
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/flipcall"
	"gvisor.dev/gvisor/pkg/unet"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "transportpeer: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	return b
}

func payloadOf(n int, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed)
	}
	return b
}

// rpc is one request/response on either communicator.
type rpc func(mid uint16, payload []byte, wantFDs int) (uint16, []byte, []int, error)

func sockRPC(sc *sockClient) rpc { return sc.call }
func chanRPC(ch *chanClient) rpc {
	return func(mid uint16, payload []byte, _ int) (uint16, []byte, []int, error) { return ch.call(mid, payload) }
}

func checkEcho(name string, call rpc, payload []byte) {
	mid, resp, fds, err := call(midEcho, payload, 0)
	if err != nil {
		fail("%s: echo of %d bytes: %v", name, len(payload), err)
	}
	closeAll(fds)
	if mid != midEcho || !bytes.Equal(resp, payload) || len(fds) != 0 {
		fail("%s: echo of %d bytes came back as mid %d, %d bytes, %d FDs", name, len(payload), mid, len(resp), len(fds))
	}
}

func checkSized(name string, call rpc, n int) {
	mid, resp, _, err := call(midSized, u32(uint32(n)), 0)
	if err != nil || mid != midSized || len(resp) != n {
		fail("%s: sized %d: mid %d, %d bytes, err %v", name, n, mid, len(resp), err)
	}
	for i, b := range resp {
		if b != patternByte(i) {
			fail("%s: sized %d: byte %d is %d", name, n, i, b)
		}
	}
}

// checkDonation asks for n FDs and checks order, content and the
// non-blocking flag gVisor's server sets on donated FDs.
func checkDonation(name string, call rpc, n int) {
	mid, _, fds, err := call(midDonate, []byte{byte(n)}, n)
	if err != nil || mid != midDonate {
		fail("%s: donate %d: mid %d, err %v", name, n, mid, err)
	}
	defer closeAll(fds)
	if len(fds) != n {
		fail("%s: donate %d: received %d FDs", name, n, len(fds))
	}
	for i, fd := range fds {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_NONBLOCK == 0 {
			fail("%s: donated FD %d is not non-blocking (flags %#x, %v)", name, i, flags, err)
		}
		buf := make([]byte, 64)
		got, err := unix.Read(fd, buf)
		if err != nil || string(buf[:got]) != fmt.Sprintf("fd-%d", i) {
			fail("%s: donated FD %d reads %q (%v)", name, i, buf[:got], err)
		}
	}
}

func connect() *sockClient {
	sock, err := unet.NewSocket(0)
	if err != nil {
		fail("unet.NewSocket(stdin): %v", err)
	}
	return &sockClient{sock: sock}
}

func mustChannel(sc *sockClient) *chanClient { return mustChannelVia(sockRPC(sc)) }

func mustChannelVia(call rpc) *chanClient {
	ch, err := newChannel(call)
	if err != nil {
		fail("channel: %v", err)
	}
	return ch
}

func scenarioSocket(maxSize, _ int) {
	sc := connect()
	call := sockRPC(sc)
	for _, n := range []int{0, 1, 100, 4096, 65539, maxSize} {
		checkEcho("socket", call, payloadOf(n, n))
	}
	checkSized("socket", call, maxSize)
	checkDonation("socket", call, 0)
	checkDonation("socket", call, 3)
	checkEcho("socket", call, []byte("after donation"))
	fmt.Println("socket ok")
}

func scenarioChannel(maxSize, rounds int) {
	sc := connect()
	ch := mustChannel(sc)
	call := chanRPC(ch)
	if int(ch.data.DataCap()) < 4+maxSize {
		fail("window data capacity %d < channel header + max message %d", ch.data.DataCap(), maxSize)
	}
	for i := 0; i < rounds; i++ {
		checkEcho("channel", call, payloadOf(i%1000, i))
	}
	checkEcho("channel", call, payloadOf(maxSize, 7))
	checkSized("channel", call, maxSize)
	checkSized("channel", call, 0)
	checkDonation("channel", call, 0)
	checkDonation("channel", call, 3)
	checkEcho("channel", call, []byte("after donation"))

	// Several channels served at once, as gVisor's client uses them.
	var wg sync.WaitGroup
	for c := 0; c < 3; c++ {
		var other *chanClient
		if c == 0 {
			// Channel RPC answered on a channel: FDs come over its fdchannel.
			other = mustChannelVia(call)
		} else {
			other = mustChannel(sc)
		}
		wg.Add(1)
		go func(c int, other *chanClient) {
			defer wg.Done()
			for i := 0; i < rounds/4; i++ {
				checkEcho(fmt.Sprintf("channel %d", c), chanRPC(other), payloadOf(i%300, c+i))
			}
			other.destroy()
		}(c, other)
	}
	wg.Wait()
	checkEcho("socket after channels", sockRPC(sc), []byte("still there"))
	ch.destroy()
	fmt.Printf("channel ok (%d round trips)\n", rounds)
}

func scenarioOversize(maxSize, _ int) {
	sc := connect()
	checkEcho("socket", sockRPC(sc), []byte("before"))
	if err := sc.sendRaw(uint32(maxSize)+1, midEcho, nil); err != nil {
		fail("sending oversized header: %v", err)
	}
	if _, _, _, err := sc.recv(0); err == nil {
		fail("server answered an oversized message instead of closing")
	}
	fmt.Println("oversize: server closed the connection")
}

// scenarioKilled dies by SIGKILL while the server is busy with a slow
// request on one channel and idle on another.
func scenarioKilled(maxSize, _ int) {
	sc := connect()
	busy := mustChannel(sc)
	idle := mustChannel(sc)
	checkEcho("busy", chanRPC(busy), []byte("x"))
	checkEcho("idle", chanRPC(idle), []byte("y"))
	go func() {
		time.Sleep(100 * time.Millisecond)
		fmt.Println("killing myself mid-call")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}()
	busy.call(midSlow, u32(400))
	fail("slow call returned before SIGKILL")
}

func scenarioShutdown(maxSize, _ int) {
	sc := connect()
	ch := mustChannel(sc)
	checkEcho("channel", chanRPC(ch), []byte("before shutdown"))
	if mid, _, _, err := sc.call(midShutdown, nil, 0); err != nil || mid != midShutdown {
		fail("shutdown RPC: mid %d, %v", mid, err)
	}
	_, _, _, err := ch.call(midEcho, []byte("after shutdown"))
	var sdErr flipcall.ShutdownError
	if !errors.As(err, &sdErr) {
		fail("call on a shut-down channel gave %v, want flipcall.ShutdownError", err)
	}
	checkEcho("socket", sockRPC(sc), []byte("socket still works"))
	fmt.Println("shutdown observed by the client")
}

func bench(name string, call rpc, size, rounds int) {
	p := payloadOf(size, 1)
	checkEcho(name, call, p) // warm up
	start := time.Now()
	for i := 0; i < rounds; i++ {
		if _, _, _, err := call(midEcho, p, 0); err != nil {
			fail("%s bench: %v", name, err)
		}
	}
	per := time.Since(start) / time.Duration(rounds)
	fmt.Printf("bench %-7s %6d B: %8.2f us/round-trip (%d rounds)\n", name, size, float64(per.Nanoseconds())/1000, rounds)
}

func scenarioBench(maxSize, rounds int) {
	sc := connect()
	ch := mustChannel(sc)
	for _, size := range []int{32, 4096, 65536} {
		if size > maxSize {
			continue
		}
		bench("socket", sockRPC(sc), size, rounds)
		bench("channel", chanRPC(ch), size, rounds)
	}
	ch.destroy()
}

func main() {
	scenarios := map[string]func(int, int){
		"socket":   scenarioSocket,
		"channel":  scenarioChannel,
		"oversize": scenarioOversize,
		"killed":   scenarioKilled,
		"shutdown": scenarioShutdown,
		"bench":    scenarioBench,
	}
	if len(os.Args) < 3 {
		fail("usage: transportpeer SCENARIO MAX_MESSAGE_SIZE [ROUNDS]")
	}
	run, ok := scenarios[os.Args[1]]
	if !ok {
		fail("unknown scenario %q", os.Args[1])
	}
	maxSize, err := strconv.Atoi(os.Args[2])
	if err != nil || maxSize <= 0 {
		fail("bad MAX_MESSAGE_SIZE %q", os.Args[2])
	}
	rounds := 1000
	if len(os.Args) > 3 {
		if rounds, err = strconv.Atoi(os.Args[3]); err != nil || rounds <= 0 {
			fail("bad ROUNDS %q", os.Args[3])
		}
	}
	run(maxSize, rounds)
}
