package main

import (
	"bytes"
)

// plaintextIndex finds plaintext in ciphertext files without knowing where
// it might have leaked: every file's contents are cut into windowLen-byte
// windows at every windowLen-aligned offset, and a rolling hash over every
// position of the scanned bytes looks them up. Any leaked run of at least
// 2*windowLen-1 contiguous bytes of a file contains one aligned window, so
// it is found wherever it sits. Low-entropy windows (zeros of a sparse file,
// "vvvv…") are not indexed: they are not evidence of a leak. Files shorter
// than a window are searched for whole when they are distinctive enough, and
// so are explicit needles such as the marker.
type plaintextIndex struct {
	windows map[uint64][]string
	needles map[string]bool
}

const (
	windowLen   = 32
	minDistinct = 5
	hashBase    = 1099511628211 // FNV prime; arithmetic mod 2^64
)

func newPlaintextIndex() *plaintextIndex {
	return &plaintextIndex{windows: map[uint64][]string{}, needles: map[string]bool{}}
}

func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

func windowHash(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h*hashBase + uint64(c)
	}
	return h
}

// add indexes one file's contents.
func (x *plaintextIndex) add(data []byte) {
	if len(data) < windowLen {
		if len(data) >= 8 && distinctBytes(data) >= minDistinct {
			x.needles[string(data)] = true
		}
		return
	}
	for off := 0; off+windowLen <= len(data); off += windowLen {
		w := data[off : off+windowLen]
		if distinctBytes(w) < minDistinct {
			continue
		}
		h := windowHash(w)
		dup := false
		for _, e := range x.windows[h] {
			if e == string(w) {
				dup = true
				break
			}
		}
		if !dup {
			x.windows[h] = append(x.windows[h], string(w))
		}
	}
}

// addNeedle adds a string searched for as a whole.
func (x *plaintextIndex) addNeedle(b []byte) { x.needles[string(b)] = true }

// find returns the indexed plaintext found in data (each hit once).
func (x *plaintextIndex) find(data []byte) []string {
	var hits []string
	found := map[string]bool{}
	for n := range x.needles {
		if bytes.Contains(data, []byte(n)) {
			hits = append(hits, printable([]byte(n)))
		}
	}
	if len(x.windows) == 0 || len(data) < windowLen {
		return hits
	}
	var top uint64 = 1 // hashBase^(windowLen-1)
	for i := 0; i < windowLen-1; i++ {
		top *= hashBase
	}
	h := windowHash(data[:windowLen])
	for i := 0; ; i++ {
		if cands, ok := x.windows[h]; ok {
			w := data[i : i+windowLen]
			for _, c := range cands {
				if c == string(w) && !found[c] {
					found[c] = true
					hits = append(hits, printable(w))
				}
			}
		}
		if i+windowLen >= len(data) || len(hits) >= 5 {
			return hits
		}
		h = (h-uint64(data[i])*top)*hashBase + uint64(data[i+windowLen])
	}
}
