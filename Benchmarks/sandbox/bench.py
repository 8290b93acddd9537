"""INSIDE a sandbox: one phase of the file benchmark on each directory given.
   python3 bench.py write|read RUN DIR...
write: 512 MiB in 1 MiB writes + fsync + close, then 2000 small files (1 KiB,
       create + write + close);
read:  the 512 MiB back in 1 MiB reads, then stat of the 2000 files, then
       everything is removed (untimed).
Prints one line per directory and step: "RESULT <dir> <step> <seconds>"."""
import os, shutil, sys, time

MiB = 1 << 20
phase, run, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
# Incompressible, and different in every MiB (a counter in each block).
seed = os.urandom(MiB)

def block(i):
    return i.to_bytes(8, "little") + seed[8:]

def timed(label, d, fn):
    t = time.perf_counter()
    fn()
    print("RESULT %s %s %.4f" % (d, label, time.perf_counter() - t), flush=True)

for d in dirs:
    base = os.path.join(d, "bench-" + run)
    if phase == "write":
        os.makedirs(os.path.join(base, "small"))
        def write_big():
            fd = os.open(os.path.join(base, "big"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            for i in range(512):
                os.write(fd, block(i))
            os.fsync(fd)
            os.close(fd)
        def create_small():
            payload = b"s" * 1024
            for i in range(2000):
                fd = os.open(os.path.join(base, "small", "f%04d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, payload)
                os.close(fd)
        timed("write512", d, write_big)
        timed("create2000", d, create_small)
    else:
        def read_big():
            fd = os.open(os.path.join(base, "big"), os.O_RDONLY)
            total, i = 0, 0
            while True:
                chunk = os.read(fd, MiB)
                if not chunk:
                    break
                if chunk[:8] != i.to_bytes(8, "little"):
                    raise SystemExit("bad data in %s at MiB %d" % (d, i))
                total += len(chunk); i += 1
            os.close(fd)
            if total != 512 * MiB:
                raise SystemExit("short read in %s: %d" % (d, total))
        def stat_small():
            for i in range(2000):
                os.stat(os.path.join(base, "small", "f%04d" % i))
        timed("read512", d, read_big)
        timed("stat2000", d, stat_small)
        shutil.rmtree(base)
