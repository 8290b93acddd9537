package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/lisafs"
)

// hostView is how a scenario looks at (and, rarely, changes) "the host side"
// of the mount while the server runs.
//
// For passthrough servers that is the host directory itself. A sealed store
// holds only ciphertext, so for kindSealed the same questions are answered
// through a second path of the same connection (fresh Walk/WalkStat, a fresh
// OpenAt + PRead, a fresh OpenAt(O_TRUNC) + PWrite): it checks that what one FD
// did is what a fresh lookup sees (sharing of scratches, commit on close), not
// that the bytes on disk are right. The plaintext on disk is checked offline
// after the server exits (sealed.go: verify, export -r and diff, marker scan).
type hostView interface {
	Lstat(rel string) (unix.Stat_t, error)
	Read(rel string) ([]byte, error)
	// Write replaces rel's contents (creating it with mode 0644 if missing).
	Write(rel string, data []byte) error
	// Names lists a directory in name order, without . and ..
	Names(rel string) ([]string, error)
	Readlink(rel string) (string, error)
}

// dirView is a passthrough server's host directory.
type dirView struct{ dir string }

func (v dirView) Lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Lstat(filepath.Join(v.dir, rel), &st)
	return st, err
}

func (v dirView) Read(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(v.dir, rel)) }

func (v dirView) Write(rel string, data []byte) error {
	return os.WriteFile(filepath.Join(v.dir, rel), data, 0644)
}

func (v dirView) Names(rel string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(v.dir, rel))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

func (v dirView) Readlink(rel string) (string, error) { return os.Readlink(filepath.Join(v.dir, rel)) }

// clientView answers host-side questions through the lisafs connection.
type clientView struct{ t *T }

func splitRel(rel string) []string {
	rel = filepath.Clean(rel)
	if rel == "." || rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

// walk returns a control FD for rel (the caller closes it), or an errno.
func (v clientView) walk(rel string) (*lisafs.ClientFD, error) {
	t := v.t
	names := splitRel(rel)
	if len(names) == 0 {
		return &t.S.RootFD, nil // the root FD itself; closeView leaves it open
	}
	status, inodes, err := t.S.RootFD.WalkMultiple(t.Ctx, names)
	if err != nil {
		return nil, err
	}
	for _, in := range inodes[:max(len(inodes)-1, 0)] {
		t.Close(t.FD(in.ControlFD))
	}
	if status != lisafs.WalkSuccess || len(inodes) != len(names) {
		if len(inodes) > 0 {
			t.Close(t.FD(inodes[len(inodes)-1].ControlFD))
		}
		if status == lisafs.WalkComponentSymlink {
			return nil, unix.ELOOP
		}
		return nil, unix.ENOENT
	}
	return t.FD(inodes[len(inodes)-1].ControlFD), nil
}

func (v clientView) closeView(fd *lisafs.ClientFD) {
	if fd != &v.t.S.RootFD {
		v.t.Close(fd)
	}
}

func (v clientView) Lstat(rel string) (unix.Stat_t, error) {
	t := v.t
	var sx linux.Statx
	if names := splitRel(rel); len(names) == 0 {
		if err := t.S.RootFD.StatTo(t.Ctx, &sx); err != nil {
			return unix.Stat_t{}, err
		}
	} else {
		stats, err := t.S.RootFD.WalkStat(t.Ctx, names)
		if err != nil {
			return unix.Stat_t{}, err
		}
		if len(stats) != len(names) {
			return unix.Stat_t{}, unix.ENOENT
		}
		sx = stats[len(stats)-1]
	}
	return statxToStat(&sx), nil
}

func statxToStat(sx *linux.Statx) unix.Stat_t {
	return unix.Stat_t{
		Dev:     unix.Mkdev(sx.DevMajor, sx.DevMinor),
		Ino:     sx.Ino,
		Nlink:   uint64(sx.Nlink),
		Mode:    uint32(sx.Mode),
		Uid:     sx.UID,
		Gid:     sx.GID,
		Size:    int64(sx.Size),
		Blksize: int64(sx.Blksize),
		Blocks:  int64(sx.Blocks),
		Atim:    unix.Timespec{Sec: sx.Atime.Sec, Nsec: int64(sx.Atime.Nsec)},
		Mtim:    unix.Timespec{Sec: sx.Mtime.Sec, Nsec: int64(sx.Mtime.Nsec)},
		Ctim:    unix.Timespec{Sec: sx.Ctime.Sec, Nsec: int64(sx.Ctime.Nsec)},
	}
}

func (v clientView) Read(rel string) ([]byte, error) {
	t := v.t
	cfd, err := v.walk(rel)
	if err != nil {
		return nil, err
	}
	defer v.closeView(cfd)
	id, h, err := cfd.OpenAt(t.Ctx, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	closeIfValid(h)
	ofd := t.FD(id)
	defer t.Close(ofd)
	var out []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := ofd.Read(t.Ctx, buf, uint64(len(out)))
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func (v clientView) Write(rel string, data []byte) error {
	t := v.t
	names := splitRel(rel)
	if len(names) == 0 {
		return unix.EISDIR
	}
	var ofd *lisafs.ClientFD
	cfd, err := v.walk(rel)
	switch {
	case err == nil:
		defer v.closeView(cfd)
		id, h, err := cfd.OpenAt(t.Ctx, unix.O_WRONLY|unix.O_TRUNC)
		if err != nil {
			return err
		}
		closeIfValid(h)
		ofd = t.FD(id)
	case err == unix.ENOENT:
		parent, err := v.walk(filepath.Dir(rel))
		if err != nil {
			return err
		}
		defer v.closeView(parent)
		in, id, h, err := parent.OpenCreateAt(t.Ctx, names[len(names)-1], unix.O_WRONLY, linux.ModeRegular|0644, myUID, myGID)
		if err != nil {
			return err
		}
		closeIfValid(h)
		t.Close(t.FD(in.ControlFD))
		ofd = t.FD(id)
	default:
		return err
	}
	defer t.Close(ofd)
	n, err := ofd.Write(t.Ctx, data, 0)
	if err == nil && n != uint64(len(data)) {
		err = fmt.Errorf("short write %d of %d", n, len(data))
	}
	return err
}

func (v clientView) Names(rel string) ([]string, error) {
	t := v.t
	cfd, err := v.walk(rel)
	if err != nil {
		return nil, err
	}
	defer v.closeView(cfd)
	id, h, err := cfd.OpenAt(t.Ctx, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	closeIfValid(h)
	ofd := t.FD(id)
	defer t.Close(ofd)
	var out []string
	for count := int32(-65536); ; count = 65536 {
		batch, err := ofd.Getdents64(t.Ctx, count)
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			if n := string(e.Name); n != "." && n != ".." {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (v clientView) Readlink(rel string) (string, error) {
	cfd, err := v.walk(rel)
	if err == unix.ELOOP {
		// walk stops at a final symlink too: walk its parent and then it.
		parent, perr := v.walk(filepath.Dir(rel))
		if perr != nil {
			return "", perr
		}
		defer v.closeView(parent)
		in, werr := parent.Walk(v.t.Ctx, filepath.Base(rel))
		if werr != nil {
			return "", werr
		}
		cfd, err = v.t.FD(in.ControlFD), nil
	}
	if err != nil {
		return "", err
	}
	defer v.closeView(cfd)
	return cfd.ReadLinkAt(v.t.Ctx)
}
