import CSodium
import Foundation

/// The baseline for rotation throughput (BENCHMARKS.md): raw libsodium AEAD calls doing what a
/// rotation does to each chunk — decrypt under one key, encrypt under another with a fresh random
/// nonce — on buffers already in memory, with no file, journal, MAC or system call around them.
public enum RotationBenchmark {
    public struct Figure: Sendable {
        /// MB/s (10^6 bytes/s) of plaintext, wall clock.
        public var wall: Double
        /// MB per CPU-second of the process (robust to other jobs on the machine).
        public var perCPU: Double
    }

    /// Plaintext re-encrypted by `threads` threads; best of `rounds` (by wall clock).
    public static func rawReseal(suite: CipherSuite, chunkSize: Int, bytes: Int, threads: Int, rounds: Int = 3) -> Figure {
        _ = Sodium.ready
        let layout = ChunkLayout(chunkSize: chunkSize, suite: suite)
        let count = max(1, bytes / chunkSize)
        let n = layout.nonceLength
        let k1 = SecretBytes.random(count: 32), k2 = SecretBytes.random(count: 32)
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: count * layout.slotSize, alignment: 64)
        let target = UnsafeMutableRawBufferPointer.allocate(byteCount: count * layout.slotSize, alignment: 64)
        defer { source.deallocate(); target.deallocate() }
        let ad = [UInt8](repeating: 1, count: 40)
        // Untimed: the chunks to re-encrypt, sealed under k1.
        let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { plain.deallocate() }
        Sodium.fillRandom(plain)
        k1.withBytes { k in
            ad.withUnsafeBytes { a in
                for i in 0..<count {
                    let slot = source.baseAddress! + i * layout.slotSize
                    Sodium.fillRandom(UnsafeMutableRawBufferPointer(start: slot, count: n))
                    suite.seal(key: k, nonce: slot, ad: a, plaintext: UnsafeRawBufferPointer(plain), out: slot + n)
                }
            }
        }
        var best = Figure(wall: 0, perCPU: 0)
        for _ in 0..<rounds {
            let c0 = processCPUSeconds()
            let t0 = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { w in
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
                defer { scratch.deallocate() }
                k1.withBytes { key1 in
                    k2.withBytes { key2 in
                        ad.withUnsafeBytes { a in
                            var i = w
                            while i < count {
                                let s = source.baseAddress! + i * layout.slotSize, t = target.baseAddress! + i * layout.slotSize
                                let ok = suite.open(key: key1, nonce: s, ad: a,
                                                    ciphertext: UnsafeRawBufferPointer(start: s + n, count: chunkSize + CipherSuite.tagLength),
                                                    out: scratch.baseAddress)
                                precondition(ok, "baseline round trip")
                                randombytes_buf(t, n)
                                suite.seal(key: key2, nonce: t, ad: a, plaintext: UnsafeRawBufferPointer(scratch), out: t + n)
                                i += threads
                            }
                        }
                    }
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let cpu = processCPUSeconds() - c0
            let mb = Double(count * chunkSize) / 1e6
            if mb / seconds > best.wall { best = Figure(wall: mb / seconds, perCPU: mb / cpu) }
        }
        return best
    }

    /// CPU time (user + system) of the whole process so far.
    public static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
