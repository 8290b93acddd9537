import CSodium
import Foundation

/// Measures the chunk codec against raw libsodium AEAD calls on the same buffers in the same run
/// (`sealgofer debug-bench`, figures in BENCHMARKS.md).
public enum CodecBenchmark {
    public struct Result: Sendable {
        public var suite: CipherSuite
        public var chunkSize: Int
        public var bytes: Int
        /// MB/s (10^6 bytes per second) of plaintext.
        public var rawSeal: Double, codecSeal: Double, codecSealParallel: Double
        public var rawOpen: Double, codecOpen: Double, codecOpenParallel: Double
        public var threads: Int
    }

    public static func run(suite: CipherSuite, chunkSize: Int, totalBytes: Int, threads: Int, rounds: Int = 9) -> Result {
        _ = Sodium.ready
        let count = max(1, totalBytes / chunkSize)
        let layout = ChunkLayout(chunkSize: chunkSize, suite: suite)
        let id = FileID.random()
        let keys = FileKeys(master: SecretBytes.random(count: 32), epoch: 1, fileID: id)
        let header = FileHeader(suite: suite, chunkSize: chunkSize, epoch: 1, fileID: id)
        let codec = ChunkCodec(layout: layout, keys: keys, headerFields: header.fields)
        let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: count * chunkSize, alignment: 64)
        let slots = UnsafeMutableRawBufferPointer.allocate(byteCount: count * layout.slotSize, alignment: 64)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: count * chunkSize, alignment: 64)
        defer { plain.deallocate(); slots.deallocate(); out.deallocate() }
        Sodium.fillRandom(plain)
        let n = layout.nonceLength
        let fields = header.fields
        func p(_ i: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: plain[(i * chunkSize)..<((i + 1) * chunkSize)]) }
        func s(_ i: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: slots[(i * layout.slotSize)..<((i + 1) * layout.slotSize)]) }
        func o(_ i: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: out[(i * chunkSize)..<((i + 1) * chunkSize)]) }
        var ad = fields + [UInt8](repeating: 0, count: 8)

        // One timed pass; the caller interleaves raw and codec passes round by round so that both
        // see the same machine load, and keeps the best pass of each.
        func best(_ body: () -> Void) -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(count * chunkSize) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) / 1e6
        }
        func parallel(_ body: @escaping (Int) -> Void) {
            DispatchQueue.concurrentPerform(iterations: threads) { w in
                var i = w
                while i < count { body(i); i += threads }
            }
        }
        var result = Result(suite: suite, chunkSize: chunkSize, bytes: count * chunkSize, rawSeal: 0, codecSeal: 0,
                            codecSealParallel: 0, rawOpen: 0, codecOpen: 0, codecOpenParallel: 0, threads: threads)
        for _ in 0..<rounds {
        // Raw: the bare AEAD call per chunk (nonce already in the slot, AD prebuilt).
        let rawSeal: Double = keys.data.withBytes { k in
            best {
                for i in 0..<count {
                    let slot = s(i)
                    ad.withUnsafeMutableBytes { a in
                        a.storeBytes(of: UInt64(i).littleEndian, toByteOffset: 32, as: UInt64.self)
                        suite.seal(key: k, nonce: slot.baseAddress!, ad: UnsafeRawBufferPointer(a), plaintext: p(i), out: slot.baseAddress! + n)
                    }
                }
            }
        }
        let rawOpen: Double = keys.data.withBytes { k in
            best {
                for i in 0..<count {
                    let slot = s(i)
                    _ = ad.withUnsafeMutableBytes { a in
                        a.storeBytes(of: UInt64(i).littleEndian, toByteOffset: 32, as: UInt64.self)
                        return suite.open(key: k, nonce: slot.baseAddress!, ad: UnsafeRawBufferPointer(a),
                                          ciphertext: UnsafeRawBufferPointer(rebasing: slot[n...]), out: o(i).baseAddress)
                    }
                }
            }
        }
        // Codec: random nonce, AD built per chunk, authentication checked.
        let codecSeal = best { for i in 0..<count { codec.seal(index: UInt64(i), plaintext: p(i), into: s(i)) } }
        let codecOpen = best { for i in 0..<count { _ = codec.open(index: UInt64(i), slot: UnsafeRawBufferPointer(s(i)), into: o(i)) } }
        let codecSealParallel = best { parallel { i in codec.seal(index: UInt64(i), plaintext: p(i), into: s(i)) } }
        let codecOpenParallel = best { parallel { i in _ = codec.open(index: UInt64(i), slot: UnsafeRawBufferPointer(s(i)), into: o(i)) } }
        precondition(memcmp(plain.baseAddress!, out.baseAddress!, count * chunkSize) == 0, "round trip")
        result.rawSeal = max(result.rawSeal, rawSeal); result.codecSeal = max(result.codecSeal, codecSeal)
        result.rawOpen = max(result.rawOpen, rawOpen); result.codecOpen = max(result.codecOpen, codecOpen)
        result.codecSealParallel = max(result.codecSealParallel, codecSealParallel)
        result.codecOpenParallel = max(result.codecOpenParallel, codecOpenParallel)
        }
        return result
    }
}
