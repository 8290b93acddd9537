package main

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/fdchannel"
	"gvisor.dev/gvisor/pkg/flipcall"
)

// chanClient is a lisafs channel, client side, built like gVisor's
// Client.createChannel: gVisor's own flipcall and fdchannel endpoints.
type chanClient struct {
	data   flipcall.Endpoint
	fdChan fdchannel.Endpoint
}

// newChannel makes the Channel RPC on `call` (the socket or, as gVisor's
// client may, an existing channel) and connects to the new channel.
func newChannel(call rpc) (*chanClient, error) {
	mid, resp, fds, err := call(midChannel, nil, 2)
	if err != nil {
		return nil, fmt.Errorf("Channel RPC: %v", err)
	}
	if mid != midChannel || len(resp) != 16 || len(fds) != 2 {
		closeAll(fds)
		return nil, fmt.Errorf("Channel RPC answered mid %d, %d bytes, %d FDs", mid, len(resp), len(fds))
	}
	desc := flipcall.PacketWindowDescriptor{
		FD:     fds[0],
		Offset: int64(binary.LittleEndian.Uint64(resp[0:])),
		Length: int(binary.LittleEndian.Uint64(resp[8:])),
	}
	defer unix.Close(fds[0]) // the mapping outlives the memfd, as in gVisor's client
	ch := &chanClient{}
	if err := ch.data.Init(flipcall.ClientSide, desc); err != nil {
		unix.Close(fds[1])
		return nil, fmt.Errorf("flipcall Init: %v", err)
	}
	ch.fdChan.Init(fds[1])
	if err := ch.data.Connect(); err != nil {
		ch.destroy()
		return nil, fmt.Errorf("flipcall Connect: %v", err)
	}
	return ch, nil
}

func (ch *chanClient) destroy() {
	ch.fdChan.Destroy()
	ch.data.Destroy()
}

// call sends one request and returns the response MID, a copy of its
// payload, and the FDs the header says were donated on the fdchannel.
func (ch *chanClient) call(mid uint16, payload []byte) (uint16, []byte, []int, error) {
	d := ch.data.Data()
	if 4+len(payload) > len(d) {
		return 0, nil, nil, fmt.Errorf("payload %d does not fit window data %d", len(payload), len(d))
	}
	binary.LittleEndian.PutUint16(d[0:], mid)
	d[2], d[3] = 0, 0
	copy(d[4:], payload)
	n, err := ch.data.SendRecvFast(uint32(4 + len(payload)))
	if err != nil {
		return 0, nil, nil, err
	}
	if n < 4 {
		return 0, nil, nil, fmt.Errorf("response datagram of %d bytes", n)
	}
	respMid := binary.LittleEndian.Uint16(d[0:])
	numFDs := int(d[2])
	var fds []int
	for i := 0; i < numFDs; i++ {
		fd, err := ch.fdChan.RecvFDNonblock()
		if err != nil {
			closeAll(fds)
			return 0, nil, nil, fmt.Errorf("header says %d FDs, got %d then %v", numFDs, i, err)
		}
		fds = append(fds, fd)
	}
	out := make([]byte, n-4)
	copy(out, d[4:n])
	return respMid, out, fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
