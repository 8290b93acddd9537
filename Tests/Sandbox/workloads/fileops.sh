#!/bin/sh
# Shell file operations on the mounted store, run INSIDE a sandbox:
#   sh fileops.sh DIR MARKER
# Every step is checked here against the same operation done on the sandbox's
# own tmpfs (/tmp), which is the reference; lines "ok: …" / "FAIL: …" are
# counted by Tests/Sandbox/run, lines "state: …" are compared between the
# encrypted and the passthrough run.
#
# Debian 12's coreutils call statx with AT_NO_AUTOMOUNT, which this gVisor
# (2022-12-19, sys_stat.go: Statx) rejects with EINVAL on every filesystem, so
# `ls` with a file argument, `ls -l` and `stat` fail in any sandbox of it.
# Listings use `find -printf` and stat fields come from `find -printf` and
# python3's os.stat/os.lstat (fstatat) instead.
set -u
dir=$1 marker=$2
ref=/tmp/fileops-ref
rm -rf "$dir" "$ref"
mkdir -p "$dir" "$ref" || { echo "FAIL: mkdir $dir"; exit 1; }

expect() { # expect DESCRIPTION WANT GOT
	if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: want [$2] got [$3]"; fi
}
succeeds() { # succeeds DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what (exit $?)"; fi
}
fails() { # fails DESCRIPTION COMMAND...  (the command must fail)
	local what=$1; shift
	if "$@" 2>/dev/null; then echo "FAIL: $what (succeeded)"; else echo "ok: $what"; fi
}
# both CMD: the same shell command in $dir and in the reference directory.
both() { (cd "$dir" && eval "$1"); (cd "$ref" && eval "$1"); }
same_file() { # same_file DESCRIPTION NAME: content and size equal to the reference's
	expect "$1" "$(md5sum < "$ref/$2") $(wc -c < "$ref/$2")" "$(md5sum < "$dir/$2") $(wc -c < "$dir/$2")"
}
field() { find "$1" -maxdepth 0 -printf "$2"; }

cd "$dir"

# create, append
printf '%s line1\n' "$marker" > f.txt
expect "create: content" "$marker line1" "$(cat f.txt)"
printf 'line2\n' >> f.txt
expect "append: two lines" "2" "$(wc -l < f.txt)"
expect "append: last line" "line2" "$(tail -n 1 f.txt)"

# overwrite in the middle, small and across chunk boundaries
printf 'ABCDEFGHIJ' > mid.bin
printf 'xyz' | dd of=mid.bin bs=1 seek=4 conv=notrunc 2>/dev/null
expect "dd conv=notrunc: overwrite in the middle" "ABCDxyzHIJ" "$(cat mid.bin)"
both "yes '$marker' | head -c 3000000 > big.bin"
same_file "3 MB file written" big.bin
both "dd if=/dev/zero of=big.bin bs=1000 seek=300 count=200 conv=notrunc 2>/dev/null"
same_file "dd conv=notrunc: 200 kB overwritten at 300 kB" big.bin
both "printf 'tail' | dd of=big.bin bs=1 seek=2999998 conv=notrunc 2>/dev/null"
same_file "dd conv=notrunc: overwrite past the end extends" big.bin
expect "dd conv=notrunc: size" "3000002" "$(wc -c < big.bin)"

# truncate: shrink, extend with zeros, shrink a big file into its middle
truncate -s 5 f.txt
expect "truncate: shrink" "$(printf '%s' "$marker" | head -c 5)" "$(cat f.txt)"
truncate -s 100000 f.txt
expect "truncate: extend size" "100000" "$(wc -c < f.txt)"
expect "truncate: extension reads as zeros" "0" "$(tail -c 99995 f.txt | tr -d '\000' | wc -c)"
both "truncate -s 70001 big.bin"
same_file "truncate: big file into its middle" big.bin
: > empty.txt
expect "truncate to zero with :>" "0" "$(wc -c < empty.txt)"

# rename: file, over an existing file, a directory with contents
mv f.txt g.txt
fails "rename: old name is gone" test -e f.txt
expect "rename: new name has the data" "100000" "$(wc -c < g.txt)"
printf 'old\n' > victim.txt; printf 'new\n' > winner.txt
mv winner.txt victim.txt
expect "rename over an existing file" "new" "$(cat victim.txt)"
mkdir -p tree/sub; printf 'leaf\n' > tree/sub/leaf.txt
mv tree moved
expect "rename a directory: contents follow" "leaf" "$(cat moved/sub/leaf.txt)"
fails "rename a directory: old name gone" test -e tree

# hard link
ln victim.txt hard.txt
expect "hard link: link count 2" "2" "$(field hard.txt %n)"
printf 'via link\n' >> hard.txt
expect "hard link: write through one name, read through the other" "new
via link" "$(cat victim.txt)"
rm victim.txt
expect "hard link: survives unlink of the other name" "1 new" "$(field hard.txt %n) $(head -n 1 hard.txt)"

# symlink
ln -s hard.txt sym
expect "symlink: target" "hard.txt" "$(readlink sym)"
expect "symlink: read through" "new" "$(head -n 1 sym)"
expect "symlink: type" "l" "$(field sym %y)"
ln -s does-not-exist dangling
succeeds "dangling symlink is a symlink" test -L dangling
fails "dangling symlink does not resolve" test -e dangling
ln -s moved/sub dirlink
expect "symlink to a directory: walk through it" "leaf" "$(cat dirlink/leaf.txt)"

# mkdir / rmdir
mkdir -p a/b/c
succeeds "mkdir -p: deepest exists" test -d a/b/c
fails "rmdir: non-empty directory refused" rmdir a/b
rmdir a/b/c a/b a
fails "rmdir: removed" test -e a
mkdir a
fails "mkdir: existing name refused" mkdir a
rmdir a

# chmod
chmod 640 hard.txt
expect "chmod 640" "640" "$(field hard.txt %m)"
chmod u+x,o+r hard.txt
expect "chmod u+x,o+r" "744" "$(field hard.txt %m)"
mkdir perms; chmod 700 perms
expect "chmod on a directory" "700" "$(field perms %m)"

# touch: new file, explicit time on a file, a directory, and through no symlink (-h)
touch fresh.txt
expect "touch: creates an empty file" "0" "$(wc -c < fresh.txt)"
touch -d '2001-02-03 04:05:06' hard.txt
expect "touch -d: mtime" "2001-02-03 04:05:06" "$(field hard.txt '%TY-%Tm-%Td %TH:%TM:%.2TS')"
touch -a -d '1999-12-31 23:59:58' hard.txt
expect "touch -a -d: atime" "1999-12-31 23:59:58" "$(field hard.txt '%AY-%Am-%Ad %AH:%AM:%.2AS')"
expect "touch -a leaves mtime" "2001-02-03" "$(field hard.txt '%TY-%Tm-%Td')"
touch -d '2010-10-10 10:10:10' perms
expect "touch -d on a directory" "2010-10-10" "$(field perms '%TY-%Tm-%Td')"
touch -h -d '2005-05-05 05:05:05' sym
expect "touch -h: symlink's own mtime" "2005-05-05 2001-02-03" "$(field sym '%TY-%Tm-%Td') $(field hard.txt '%TY-%Tm-%Td')"

# ls -la (as find -printf: see the note at the top), many entries (getdents paging)
mkdir many
i=0; while [ $i -lt 300 ]; do : > "many/entry-with-a-long-name-$i"; i=$((i + 1)); done
expect "300 files listed by find" "300" "$(find many -type f | wc -l)"
expect "300 files listed by ls (no stat of arguments: ls -f)" "302" "$(cd many && ls -f | wc -l)"
rm -r many
fails "rm -r: directory gone" test -e many

# find by name and type
expect "find -name" "./empty.txt ./fresh.txt ./g.txt ./hard.txt ./moved/sub/leaf.txt" "$(find . -name '*.txt' | sort | tr '\n' ' ' | sed 's/ $//')"
expect "find -type l" "./dangling ./dirlink ./sym" "$(find . -type l | sort | tr '\n' ' ' | sed 's/ $//')"

# stat fields (python3 os.stat / os.lstat, fstatat)
expect "stat: size, mode, nlink of a file" "100000 0o100644 1" \
	"$(python3 -c 'import os; s=os.stat("g.txt"); print(s.st_size, oct(s.st_mode), s.st_nlink)')"
expect "lstat: a symlink" "True 8" \
	"$(python3 -c 'import os, stat; s=os.lstat("sym"); print(stat.S_ISLNK(s.st_mode), s.st_size)')"
expect "stat: mtime seconds" "981173106" "$(python3 -c 'import os; print(int(os.stat("hard.txt").st_mtime))' )"

# an unlinked file stays readable and writable through an open descriptor
printf '%s open-unlinked\n' "$marker" > ghost.txt
exec 3<>ghost.txt
rm ghost.txt
fails "unlinked: name gone" test -e ghost.txt
expect "unlinked: still readable through the open fd" "$marker open-unlinked" "$(head -n 1 <&3)"
printf 'more\n' >&3
exec 3>&-

# the final tree, for comparison with the other mount (no times except set ones, no dir sizes)
find . -mindepth 1 \( -type d -printf 'state: %y %m %p\n' \) -o \( -printf 'state: %y %m %n %s %p %l\n' \) | sort
for f in $(find . -type f | sort); do echo "state: md5 $(md5sum < "$f") $f"; done
rm -rf "$ref"
echo "done"
