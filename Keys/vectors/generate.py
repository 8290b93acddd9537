#!/usr/bin/env python3
"""Independent implementation of Keys/README.md used to produce the known-answer vectors.

Written from the spec alone: BLAKE2b from Python's hashlib, AEADs and Argon2id from the system
libsodium through ctypes. The Swift test-suite rebuilds every vector byte for byte, so the two
implementations agree or CI fails. Run: python3 Keys/vectors/generate.py  (rewrites *.json here).
"""
import ctypes, ctypes.util, hashlib, json, os, struct

sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
assert sodium.sodium_init() >= 0
here = os.path.dirname(os.path.abspath(__file__))

def H(key, msg): return hashlib.blake2b(msg, digest_size=32, key=key).digest()
def H0(msg): return hashlib.blake2b(msg, digest_size=32).digest()
def KDF(key, i): return hashlib.blake2b(b"", digest_size=32, key=key, salt=struct.pack("<Q", i) + bytes(8), person=b"sgfile01" + bytes(8)).digest()
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def pattern(n, seed): return bytes((i * 31 + seed + (i >> 8)) & 0xFF for i in range(n))

def aead(suite, key, nonce, ad, msg):
    out = ctypes.create_string_buffer(len(msg) + 16); olen = ctypes.c_ulonglong()
    f = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt if suite == 1 else sodium.crypto_aead_aes256gcm_encrypt
    assert f(out, ctypes.byref(olen), msg, ctypes.c_ulonglong(len(msg)), ad, ctypes.c_ulonglong(len(ad)), None, nonce, key) == 0
    return out.raw[:olen.value]

def argon2id(pw, salt, ops, mem):
    out = ctypes.create_string_buffer(32)
    assert sodium.crypto_pwhash(out, ctypes.c_ulonglong(32), pw, ctypes.c_ulonglong(len(pw)), salt,
                                ctypes.c_ulonglong(ops), ctypes.c_size_t(mem), ctypes.c_int(2)) == 0
    return out.raw

def keyring_vector(kind):
    store_id = bytes(range(16)); salt = bytes(range(0x20, 0x30)); nonce = bytes(range(0x40, 0x58))
    master = bytes(range(0x80, 0xA0)); created = 1767225600
    config = ("format-version=1\nstore-id=%s\nsuite=xchacha20poly1305\nchunk-size=4096\nnames=plaintext\n" % store_id.hex()).encode()
    v = {"config": config.decode(), "store_id": store_id.hex(), "salt": salt.hex(), "nonce": nonce.hex(),
         "master_keys": [master.hex()], "created": created}
    if kind == "keyfile":
        keyfile = bytes(range(0xC0, 0xE0)); kdf, ops, mem = 1, 0, 0
        kek = H(keyfile, b"sealgofer-v1 keyfile kek" + salt); v["key_file"] = keyfile.hex()
    else:
        pw = b"correct horse battery staple"; kdf, ops, mem = 2, 1, 8192
        kek = argon2id(pw, salt, ops, mem); v["passphrase"] = pw.decode()
    wrap = H(kek, b"sealgofer-v1 keyring wrap"); check = H(kek, b"sealgofer-v1 key check")
    body = b"SGKR" + u16(1) + bytes([kdf, 0]) + store_id + salt + u64(ops) + u64(mem) + H0(config) + check
    body += u32(1) + u32(1) + bytes([1, 0, 0, 0]) + u64(created)
    ct = aead(1, wrap, nonce, body, master)
    ring = body + nonce + ct; ring += H0(ring)
    v.update({"kek": kek.hex(), "wrap_key": wrap.hex(), "check_value": check.hex(), "keyring": ring.hex()})
    return v

def file_vector(suite):
    chunk = 4096; nlen = 24 if suite == 1 else 12
    master = bytes(range(0x10, 0x30)); epoch = 3; file_id = bytes(range(0xA0, 0xB0))
    file_key = H(master, b"sealgofer-v1 file key" + file_id)
    sub = {name: KDF(file_key, i) for i, name in enumerate(["data", "header", "sidecar", "journal", "digest"], 1)}
    fields = b"SGFD" + u16(1) + bytes([suite, 0]) + u32(chunk) + u32(epoch) + file_id
    header = fields + H(sub["header"], fields)
    size = 2 * chunk + 1000
    plaintext = pattern(size, suite)
    chunks = []; data = header
    for i in range(3):
        nonce = bytes((0x50 + i * 7 + j) & 0xFF for j in range(nlen))
        p = plaintext[i * chunk:(i + 1) * chunk]
        slot = nonce + aead(suite, sub["data"], nonce, fields + u64(i), p)
        chunks.append({"index": i, "nonce": nonce.hex(), "slot": slot.hex()}); data += slot
    prev = bytes(16)
    sc = b"SGSC" + u16(1) + bytes([suite, 0]) + u32(chunk) + u32(epoch) + file_id + u64(size) + u64(7) + u64(42) + prev + bytes(24)
    sc += H(sub["sidecar"], sc)
    # A journal that rewrites chunk 1 and shrinks nothing: new sidecar generation 8, 43 encryptions.
    new_sc = b"SGSC" + u16(1) + bytes([suite, 0]) + u32(chunk) + u32(epoch) + file_id + u64(size) + u64(8) + u64(43) + prev + bytes(24)
    new_sc += H(sub["sidecar"], new_sc)
    jnonce = bytes((0x90 + j) & 0xFF for j in range(nlen))
    jplain = pattern(chunk, 99)
    jslot = jnonce + aead(suite, sub["data"], jnonce, fields + u64(1), jplain)
    journal = b"SGJN" + u16(1) + u16(0) + file_id + new_sc + header + u32(1) + u64(1) + u32(len(jslot)) + jslot
    journal += H(sub["journal"], journal)
    return {"suite": suite, "chunk_size": chunk, "master_key": master.hex(), "epoch": epoch, "file_id": file_id.hex(),
            "file_key": file_key.hex(), "subkeys": {k: v.hex() for k, v in sub.items()},
            "plaintext_size": size, "plaintext": plaintext.hex(), "header": header.hex(), "chunks": chunks,
            "file": data.hex(),
            "sidecar": {"committed_size": size, "generation": 7, "encryptions": 42, "bytes": sc.hex()},
            "journal": {"chunk_index": 1, "nonce": jnonce.hex(), "plaintext": jplain.hex(),
                        "new_generation": 8, "new_encryptions": 43, "bytes": journal.hex()},
            "digest_of_chunk0": hashlib.blake2b(plaintext[:chunk], digest_size=16, key=sub["digest"]).hexdigest()}

outputs = {"keyring-keyfile.json": keyring_vector("keyfile"), "keyring-passphrase.json": keyring_vector("passphrase"),
           "file-xchacha20poly1305.json": file_vector(1)}
if sodium.crypto_aead_aes256gcm_is_available():
    outputs["file-aes256gcm.json"] = file_vector(2)
for name, v in outputs.items():
    with open(os.path.join(here, name), "w") as f:
        json.dump(v, f, indent=1, sort_keys=True); f.write("\n")
    print("wrote", name)
