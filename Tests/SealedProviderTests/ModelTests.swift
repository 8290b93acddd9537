import CLinux
import Foundation
import Lisafs
import SealedProvider
import SealedStore
import XCTest

/// fsx-style: thousands of random writes (donated FD and PWrite), truncates,
/// appends, reopen cycles, renames, links and concurrent opens of one file,
/// each checked against the model; between phases the provider is restarted
/// and the store checked offline (verify, committed contents, no plaintext).
///
/// SEALGOFER_FSX_SEED=n reproduces a run; SEALGOFER_FSX_SECONDS sets the
/// length (default 25 s; 600 with SEALGOFER_LONG_TESTS=1).
final class ModelTests: XCTestCase {
    func testRandomWorkloadMatchesModel() throws {
        let seed = TestEnvironment.seed("SEALGOFER_FSX_SEED")
        let seconds = TestEnvironment.value("SEALGOFER_FSX_SECONDS").flatMap(Double.init) ?? (TestEnvironment.isLong ? 600 : 25)
        print("fsx: seed \(seed) (SEALGOFER_FSX_SEED=\(seed) reproduces), \(seconds) s")
        let fixture = try StoreFixture(chunkSize: 4096)
        defer { fixture.remove() }
        var model = ModelWorkload(seed: seed, chunk: 4096, maxSize: 160 * 1024)
        let end = Date(timeIntervalSinceNow: seconds)
        var phase = 0
        var totals = SealedProviderStatistics()
        while Date() < end {
            phase += 1
            // Vary the limits per phase: RPC-only files, tight scratch space, eviction.
            let options = fixture.options { o in
                o.donateLimit = [UInt64(48 * 1024), 1 << 20][phase % 2]
                o.scratchLimit = [UInt64(96 * 1024), 1 << 30][(phase / 2) % 2]
                o.maxCachedFiles = [0, 2, 16][phase % 3]
                o.directDirtyLimit = 64 * 1024
            }
            let provider = try fixture.provider(options)
            let client = try LisafsClient(server: Server(provider: provider))
            let root = try client.mount().root.controlFD
            let steps = model.int(200..<600)
            do {
                for _ in 0..<steps { try model.step(client, root: root) }
                try model.closeAll(client)
            } catch {
                XCTFail("seed \(seed), phase \(phase), step \(model.steps): \(error)\n\(model.trace)")
                client.shutdown(); provider.shutdown()
                return
            }
            let s = provider.statistics
            totals.commits += s.commits; totals.scans += s.scans; totals.unchangedChecks += s.unchangedChecks
            totals.scratchFills += s.scratchFills; totals.directLoads += s.directLoads; totals.scratchReuses += s.scratchReuses
            client.shutdown()
            provider.shutdown()
            do {
                try model.checkCommitted(fixture)
            } catch {
                XCTFail("seed \(seed), after phase \(phase): \(error)\n\(model.trace)")
                return
            }
            if phase % 4 == 1 {
                let report = try fixture.verify()
                XCTAssertTrue(report.isClean, "seed \(seed), phase \(phase): \(report.damage)")
                if !report.isClean { return }
            }
        }
        let report = try fixture.verify()
        XCTAssertTrue(report.isClean, "seed \(seed): \(report.damage)")
        print("fsx: seed \(seed): \(model.steps) steps in \(phase) phases; \(totals.commits) commits, \(totals.scans) scans, "
              + "\(totals.unchangedChecks) unchanged checks, \(totals.scratchFills) scratch fills, \(totals.scratchReuses) reuses, "
              + "\(totals.directLoads) RPC-path loads")
        XCTAssertGreaterThan(totals.directLoads, 0, "the RPC path was exercised")
        XCTAssertGreaterThan(totals.scratchReuses, 0, "cached scratches were reused")
    }
}
