import ArgumentParser
import SealedStore
import Foundation

/// Hidden: chunk codec throughput against raw libsodium (BENCHMARKS.md).
struct DebugBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "debug-bench", abstract: "(benchmark)", shouldDisplay: false)

    @Option(name: .customLong("mib")) var mib: Int = 128
    @Option(name: .customLong("chunk-size")) var chunkSize: Int = StoreConfig.defaultChunkSize
    @Option var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        print("suite               chunk   raw-seal codec-seal  ratio codec-seal×\(threads)   raw-open codec-open  ratio codec-open×\(threads)  (MB/s)")
        for suite in CipherSuite.allCases where suite.isAvailable {
            let r = CodecBenchmark.run(suite: suite, chunkSize: chunkSize, totalBytes: mib << 20, threads: threads)
            func f(_ v: Double) -> String { String(format: "%10.0f", v) }
            print(suite.name.padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: "%7d", chunkSize)
                  + f(r.rawSeal) + f(r.codecSeal) + String(format: "%7.3f", r.codecSeal / r.rawSeal) + f(r.codecSealParallel) + "     "
                  + f(r.rawOpen) + f(r.codecOpen) + String(format: "%7.3f", r.codecOpen / r.rawOpen) + f(r.codecOpenParallel))
        }
    }
}
