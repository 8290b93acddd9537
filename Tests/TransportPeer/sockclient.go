package main

import (
	"encoding/binary"
	"fmt"
	"io"

	"gvisor.dev/gvisor/pkg/unet"
)

// sockClient speaks lisafs' socket framing the way gVisor's client does
// (pkg/lisafs/sock.go): an 8-byte header {payloadLen u32, MID u16, pad u16},
// the payload, and FDs picked up from the first recvmsg of the header.
type sockClient struct {
	sock *unet.Socket
}

func (c *sockClient) send(mid uint16, payload []byte) error {
	return c.sendRaw(uint32(len(payload)), mid, payload)
}

// sendRaw lets a test lie about the payload length.
func (c *sockClient) sendRaw(payloadLen uint32, mid uint16, payload []byte) error {
	buf := make([]byte, 8+len(payload))
	binary.LittleEndian.PutUint32(buf[0:], payloadLen)
	binary.LittleEndian.PutUint16(buf[4:], mid)
	copy(buf[8:], payload)
	w := c.sock.Writer(true)
	for n := 0; n < len(buf); {
		cur, err := w.WriteVec([][]byte{buf[n:]})
		if err != nil {
			return err
		}
		n += cur
	}
	return nil
}

// readFull mirrors lisafs' readFrom: FDs come with the first read that
// returns data.
func (c *sockClient) readFull(buf []byte, wantFDs int) ([]int, error) {
	r := c.sock.Reader(true)
	r.EnableFDs(wantFDs)
	var fds []int
	fdInit := false
	for got := 0; got < len(buf); {
		cur, err := r.ReadVec([][]byte{buf[got:]})
		if err != nil && (err != io.EOF || cur == 0) {
			r.CloseFDs()
			return nil, err
		}
		if !fdInit && cur > 0 {
			fds, err = r.ExtractFDs()
			if err != nil {
				return nil, err
			}
			fdInit = true
			r.EnableFDs(0)
		}
		got += cur
	}
	return fds, nil
}

func (c *sockClient) recv(wantFDs int) (uint16, []byte, []int, error) {
	hdr := make([]byte, 8)
	fds, err := c.readFull(hdr, wantFDs)
	if err != nil {
		return 0, nil, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[0:])
	mid := binary.LittleEndian.Uint16(hdr[4:])
	if n > 64<<20 {
		return 0, nil, fds, fmt.Errorf("absurd payload length %d", n)
	}
	payload := make([]byte, n)
	if n > 0 {
		if _, err := c.readFull(payload, 0); err != nil {
			return 0, nil, fds, err
		}
	}
	return mid, payload, fds, nil
}

func (c *sockClient) call(mid uint16, payload []byte, wantFDs int) (uint16, []byte, []int, error) {
	if err := c.send(mid, payload); err != nil {
		return 0, nil, nil, err
	}
	return c.recv(wantFDs)
}
