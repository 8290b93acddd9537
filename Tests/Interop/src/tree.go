package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// treeEntry is what the sealed store must reproduce of one path.
type treeEntry struct {
	typ    uint32 // S_IFMT bits
	perm   uint32 // mode & 07777
	size   int64
	sum    [32]byte // regular files
	head   []byte   // first bytes of a regular file, for messages
	target string   // symlinks (with $MOUNT/$OUTSIDE substituted)
	mtime  unix.Timespec
	ino    uint64
	nlink  uint64
}

// treeSnap is a directory tree as seen after a server exited.
type treeSnap struct {
	taken   time.Time
	entries map[string]*treeEntry // by path relative to the root ("." is the root)
	// links maps a regular file's path to the sorted paths sharing its inode
	// (only for files with more than one name inside the tree).
	links map[string]string
}

// snapshotTree records root. Symlink targets have each prefix in subst
// replaced by its token, so that trees of different runs compare. With
// index non-nil, every regular file's contents are added to it (see
// plaintextIndex) for the store scan.
func snapshotTree(root string, subst map[string]string, index *plaintextIndex) (*treeSnap, error) {
	snap := &treeSnap{taken: time.Now(), entries: map[string]*treeEntry{}, links: map[string]string{}}
	// Longest prefixes first, so "$OUTSIDE" wins over "$MOUNT" for dir-outside.
	prefixes := make([]string, 0, len(subst))
	for p := range subst {
		prefixes = append(prefixes, p)
	}
	sort.Slice(prefixes, func(i, j int) bool { return len(prefixes[i]) > len(prefixes[j]) })

	byIno := map[uint64][]string{}
	var walk func(rel string) error
	walk = func(rel string) error {
		path := filepath.Join(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		e := &treeEntry{typ: st.Mode & unix.S_IFMT, perm: st.Mode & 07777, size: st.Size, mtime: st.Mtim, ino: st.Ino, nlink: uint64(st.Nlink)}
		snap.entries[rel] = e
		switch e.typ {
		case unix.S_IFREG:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			e.sum = sha256.Sum256(data)
			e.head = data[:min(len(data), 48)]
			if st.Nlink > 1 {
				byIno[st.Ino] = append(byIno[st.Ino], rel)
			}
			if index != nil {
				index.add(data)
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			for _, p := range prefixes {
				if target == p || strings.HasPrefix(target, p+"/") {
					target = subst[p] + strings.TrimPrefix(target, p)
					break
				}
			}
			e.target = target
		case unix.S_IFDIR:
			ents, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			for _, d := range ents {
				if err := walk(filepath.Join(rel, d.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		return nil, err
	}
	for _, paths := range byIno {
		if len(paths) < 2 {
			continue
		}
		sort.Strings(paths)
		group := strings.Join(paths, " = ")
		for _, p := range paths {
			snap.links[p] = group
		}
	}
	return snap, nil
}

func typeName(t uint32) string {
	switch t {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "char device"
	case unix.S_IFBLK:
		return "block device"
	}
	return fmt.Sprintf("type %#o", t)
}

// diffTrees compares the passthrough server's tree (ref) with the sealed
// store's export (got). Owners are not compared (export does not restore
// them), nor atimes, nor mtimes that are not explicitly set into the past
// (scenario runs happen at different times). Entries a store cannot hold
// (FIFOs, sockets, devices) are expected to be absent: a documented
// difference, returned as a note.
func diffTrees(ref, got *treeSnap) (failures, notes []string) {
	fail := func(format string, args ...interface{}) { failures = append(failures, fmt.Sprintf(format, args...)) }
	paths := make([]string, 0, len(ref.entries))
	for p := range ref.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var absentSpecial []string
	// Anything set more than an hour before the reference run started was set
	// explicitly (SetStat, or import of a file with an old mtime).
	explicit := ref.taken.Add(-time.Hour).Unix()
	for _, p := range paths {
		r := ref.entries[p]
		g, ok := got.entries[p]
		if r.typ != unix.S_IFREG && r.typ != unix.S_IFDIR && r.typ != unix.S_IFLNK {
			absentSpecial = append(absentSpecial, fmt.Sprintf("%s (%s)", p, typeName(r.typ)))
			if ok {
				fail("export has %s as a %s; a store holds only files, directories and symlinks", p, typeName(g.typ))
			}
			continue
		}
		if !ok {
			fail("export lacks %s (%s on the passthrough server)", p, typeName(r.typ))
			continue
		}
		if g.typ != r.typ {
			fail("export has %s as a %s, passthrough as a %s", p, typeName(g.typ), typeName(r.typ))
			continue
		}
		if g.perm != r.perm && r.typ != unix.S_IFLNK {
			fail("export %s mode %#o, passthrough %#o", p, g.perm, r.perm)
		}
		switch r.typ {
		case unix.S_IFREG:
			if g.size != r.size || g.sum != r.sum {
				fail("export %s: %d bytes starting \"%s\", passthrough %d bytes starting \"%s\"", p, g.size, printable(g.head), r.size, printable(r.head))
			}
			if gl, rl := got.links[p], ref.links[p]; gl != rl {
				fail("export %s hard links {%s}, passthrough {%s}", p, gl, rl)
			}
		case unix.S_IFLNK:
			if g.target != r.target {
				fail("export %s -> %q, passthrough -> %q", p, g.target, r.target)
			}
		}
		if r.typ != unix.S_IFDIR && r.mtime.Sec < explicit && (g.mtime.Sec != r.mtime.Sec || g.mtime.Nsec != r.mtime.Nsec) {
			fail("export %s mtime %d.%09d, passthrough %d.%09d (set explicitly)", p, g.mtime.Sec, g.mtime.Nsec, r.mtime.Sec, r.mtime.Nsec)
		}
	}
	var extra []string
	for p := range got.entries {
		if _, ok := ref.entries[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		fail("export has %s (%s), the passthrough server's tree does not", p, typeName(got.entries[p].typ))
	}
	if len(absentSpecial) > 0 {
		notes = append(notes, fmt.Sprintf("tree: not in the store by design (files, dirs and symlinks only): %s", strings.Join(absentSpecial, ", ")))
	}
	return failures, notes
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
