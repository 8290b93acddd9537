"""On the HOST, after a sandbox running crash-writer.py was killed: does FILE
hold every record acknowledged by fsync, and nothing but a prefix of the
record stream? Prints one line; exit 0 when both hold.
   python3 crash-check.py FILE MARKER SYNCED"""
import sys
path, marker, synced = sys.argv[1], sys.argv[2], int(sys.argv[3])

def record(i):
    head = ("%s record %08d " % (marker, i)).encode()
    return head + b"." * (999 - len(head)) + b"\n"

data = open(path, "rb").read()
full, rest = divmod(len(data), 1000)
for i in range(full):
    if data[i * 1000:(i + 1) * 1000] != record(i):
        print("record %d damaged (file %d bytes, %d fsynced records)" % (i, len(data), synced))
        sys.exit(1)
if rest and not record(full).startswith(data[full * 1000:]):
    print("partial record %d is not a prefix of it (file %d bytes)" % (full, len(data)))
    sys.exit(1)
if full < synced:
    print("LOST fsynced data: file has %d bytes = %d records, %d were fsynced" % (len(data), full, synced))
    sys.exit(1)
print("%d bytes: %d whole records%s, %d fsynced before the kill" % (len(data), full, " + %d bytes" % rest if rest else "", synced))
