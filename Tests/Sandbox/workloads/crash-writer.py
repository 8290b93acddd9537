"""INSIDE a sandbox: append numbered 1000-byte records to FILE, fsync after
every 25th, and after each fsync print "synced N" (flushed): what the host
may count on after killing the sandbox. Runs until killed (or RECORDS).
With PAUSE_AT: after PAUSE_AT records, prints "paused" and waits for a line
on stdin (so the host can kill something at a known point; a file made on
the host would not do: the sandbox caches its root's directory entries).
   python3 crash-writer.py FILE MARKER [RECORDS [PAUSE_AT]]"""
import os, sys
path, marker = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 62
pause_at = int(sys.argv[4]) if len(sys.argv) > 4 else -1

def record(i):
    head = ("%s record %08d " % (marker, i)).encode()
    return head + b"." * (999 - len(head)) + b"\n"

fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
i = 0
while i < limit:
    os.write(fd, record(i))
    i += 1
    if i % 25 == 0:
        os.fsync(fd)
        print("synced", i, flush=True)
    if i == pause_at:
        print("paused", flush=True)
        sys.stdin.readline()
os.close(fd)
print("done", flush=True)
