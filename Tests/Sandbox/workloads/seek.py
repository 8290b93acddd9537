"""INSIDE a sandbox: file I/O with seeks through Python's os and io layers.
   python3 seek.py DIR MARKER
Prints ok:/FAIL: lines and state: lines (see fileops.sh)."""
import hashlib, os, sys

d, marker = sys.argv[1], sys.argv[2].encode()
os.makedirs(d, exist_ok=True)
os.chdir(d)
failures = 0

def expect(what, want, got):
    global failures
    if want == got:
        print("ok:", what)
    else:
        failures += 1
        print("FAIL: %s: want %r got %r" % (what, want if len(repr(want)) < 200 else "…", got if len(repr(got)) < 200 else "…"))

# A model of what the file must hold, updated alongside every write.
model = bytearray()
def model_write(offset, data):
    global model
    if offset > len(model):
        model += bytes(offset - len(model))
    model[offset:offset + len(data)] = data

with open("seek.bin", "wb+") as f:
    block = (marker + b" ") * 8192
    f.write(block); model_write(0, block)
    for offset in (0, 4095, 4096, 65535, 65536, 65537, 100000, len(block) - 3):
        data = b"<%d>" % offset
        f.seek(offset); f.write(data); model_write(offset, data)
    f.flush(); os.fsync(f.fileno())
    f.seek(0); expect("seek + overwrite at chunk edges, read back", bytes(model), f.read())
    far = len(block) + 100000
    f.seek(far); f.write(b"far"); model_write(far, b"far")   # past the end: a hole
    f.seek(len(model) - 3); expect("write past the end", b"far", f.read())
    f.seek(len(block) + 10); expect("hole reads as zeros", bytes(20), f.read(20))
    f.seek(-3, os.SEEK_END); expect("SEEK_END", b"far", f.read())
    f.seek(10); f.seek(5, os.SEEK_CUR); expect("SEEK_CUR", 15, f.tell())
    f.truncate(150000); del model[150000:]
    f.seek(0, os.SEEK_END); expect("truncate then SEEK_END", 150000, f.tell())
    f.truncate(len(block) + 5000); model += bytes(len(block) + 5000 - len(model))
    f.seek(0); expect("truncate up: zeros after the old end", bytes(model), f.read())

fd = os.open("seek.bin", os.O_RDWR)
os.pwrite(fd, b"PWRITE", 77777); model_write(77777, b"PWRITE")
expect("pread after pwrite", b"PWRITE", os.pread(fd, 6, 77777))
expect("fstat size", len(model), os.fstat(fd).st_size)
os.close(fd)

with open("seek.bin", "rb") as f:
    expect("reopened file equals the model", hashlib.md5(model).hexdigest(), hashlib.md5(f.read()).hexdigest())

# O_APPEND ignores the file position for writes.
with open("append.txt", "wb") as f: f.write(b"one\n")
fd = os.open("append.txt", os.O_WRONLY | os.O_APPEND)
os.lseek(fd, 0, os.SEEK_SET); os.write(fd, b"two\n"); os.close(fd)
with open("append.txt", "rb") as f: expect("O_APPEND after lseek(0)", b"one\ntwo\n", f.read())

# Many small files, written and read back in random order.
import random
rng = random.Random(7)
names = ["small-%03d" % i for i in range(200)]
for name in names:
    with open(name, "wb") as f: f.write(marker + name.encode() * rng.randint(1, 50))
rng.shuffle(names)
bad = [n for n in names if not open(n, "rb").read().startswith(marker + n.encode())]
expect("200 small files read back", [], bad)

print("state: seek.bin", hashlib.md5(open("seek.bin", "rb").read()).hexdigest(), os.stat("seek.bin").st_size)
print("state: small", hashlib.md5(b"".join(open(n, "rb").read() for n in sorted(names))).hexdigest())
print("done")
