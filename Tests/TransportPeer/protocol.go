// The test MIDs the Swift echo server (Tests/LisafsTests/TransportEchoServer.swift)
// understands, besides lisafs' own Channel (2). Keep both files in step.
package main

const (
	midChannel  = 2   // lisafs Channel: ChannelResp{dataOffset i64, dataLength u64} + [memfd, fdchannel socket]
	midEcho     = 100 // respond with the same MID and payload
	midDonate   = 101 // payload[0] = n: respond with n pipe read ends holding "fd-<i>"
	midSized    = 102 // payload = u32 n: respond with n bytes, byte i = (7*i+3) & 0xff
	midSlow     = 103 // payload = u32 ms: sleep, then echo
	midShutdown = 104 // the server calls shutdown() on every channel it serves
)

func patternByte(i int) byte { return byte((7*i + 3) & 0xff) }
