#!/bin/sh
# INSIDE a sandbox: unpack a source tree onto the mount and compare it with
# the original (visible read-only through the sandbox's root).
#   sh tar.sh TARBALL ORIGINAL DIR      (TARBALL holds ORIGINAL's contents as ./…)
set -u
tarball=$1 original=$2 dir=$3
rm -rf "$dir"; mkdir -p "$dir"
if tar -xf "$tarball" -C "$dir"; then echo "ok: tar x"; else echo "FAIL: tar x (exit $?)"; fi
if diff -r "$dir" "$original" > /tmp/diff.out 2>&1; then
	echo "ok: diff -r against the original"
else
	echo "FAIL: diff -r against the original: $(head -c 600 /tmp/diff.out)"
fi
echo "state: files $(find "$dir" -type f | wc -l) dirs $(find "$dir" -type d | wc -l) bytes $(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')"
echo "state: tree $(cd "$dir" && find . -printf '%y %m %s %p\n' | grep -v '^d' | sort | md5sum)"
echo done
