import ArgumentParser
import Foundation
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

struct RotateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Re-encrypt every file under a new key epoch; --retire removes epochs no file uses.",
        discussion: "rotate adds an epoch, makes it the encrypting one and moves every file to it (new file ID and "
            + "key, fresh nonces), each file atomically (a new file renamed over the old one; small and hard-linked files in place through a journal). Killed at any instant, run it again: it "
            + "resumes the same rotation. Files stay readable throughout. Then `rotate --retire` removes the old "
            + "epochs' master keys; it refuses, naming them, while files still use them. "
            + "The store must not be served meanwhile: rotate refuses while `serve --store` (or any other command) "
            + "holds the store's lock. "
            + "Exit 0: done. 1: some files could not be moved (damaged; named). 2: usage or wrong key. "
            + "3: store in use (a running gofer or command) or keyring locked. 4: --retire refused (files still use old epochs).")

    @Option(help: "Store directory.") var store: String
    @OptionGroup var key: KeyOptions
    @Option(help: "Files moved concurrently (large files also use this many threads).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Remove every epoch but the newest, once no file uses them.") var retire = false
    @Flag(name: .customLong("no-sync"),
          help: "No syncs between the steps of a move (one syncfs at the end): atomic against a killed process, not against power loss.")
    var noSync = false
    @Flag(help: "Machine-readable summary on stdout.") var json = false

    func validate() throws {
        guard jobs >= 1 && jobs <= 256 else { throw ValidationError("--jobs must be between 1 and 256") }
        if retire && noSync { throw ValidationError("--no-sync applies to rotation, not to --retire") }
    }

    func run() throws {
        do {
            let material = try key.load()
            if retire { try runRetire(material) } else { try runRotate(material) }
        } catch let e as ExitCode {
            throw e
        } catch SealedStoreError.storeInUse {
            fputs("sealgofer: store is in use: a running `sealgofer serve --store` (or another sealgofer command) holds "
                  + "its lock; stop it, then run rotate again\n", stderr)
            throw ExitCode(RotationExitStatus.busy)
        } catch let busy as KeyringLock.Busy {
            fputs("sealgofer: \(busy.description); try again when it has finished\n", stderr)
            throw ExitCode(RotationExitStatus.busy)
        } catch let refused as RetirementRefused {
            if json {
                printJSON(["retired": [Int](), "refused": true, "rotationInProgress": refused.rotationInProgress.map { Int($0) as Any } ?? NSNull(),
                           "users": refused.users.map { ["path": $0.path, "reason": $0.reason] }])
            }
            fputs("sealgofer: \(refused.description)\n", stderr)
            throw ExitCode(RotationExitStatus.retireRefused)
        } catch {
            throw ExitStatus.report(error)
        }
    }

    private func runRotate(_ material: KeyMaterial) throws {
        var options = RotationOptions()
        options.jobs = jobs
        options.syncs = !noSync
        let bar = RateProgressBar("rotate")
        let report = try StoreRotation.rotate(path: store, key: material, options: options) { p in
            bar.update(doneBytes: p.doneBytes, totalBytes: p.totalBytes, doneFiles: p.doneFiles, totalFiles: p.totalFiles)
        }
        bar.finish()
        let rate = report.seconds > 0 ? Double(report.bytesMoved) / report.seconds / 1e6 : 0
        if json {
            printJSON(["epoch": Int(report.targetEpoch), "resumed": report.resumed, "complete": report.complete,
                       "files": report.files, "moved": report.moved, "movedThroughJournal": report.journaledMoves, "alreadyCurrent": report.alreadyCurrent,
                       "reusedInodes": report.reusedInodes,
                       "bytesMoved": report.bytesMoved, "seconds": report.seconds, "mbPerSecond": rate,
                       "failures": report.failures.map { ["path": $0.path, "message": $0.message, "damage": $0.isDamage] }])
        } else {
            print("rotate: \(report.resumed ? "resumed rotation to" : "new") epoch \(report.targetEpoch): "
                  + "\(report.moved) of \(report.files) files re-encrypted (\(formatBytes(report.bytesMoved))"
                  + String(format: " in %.1f s, %.0f MB/s)", report.seconds, rate)
                  + (report.alreadyCurrent > 0 ? ", \(report.alreadyCurrent) already done" : "")
                  + (report.complete ? "; run `sealgofer rotate --retire` to remove the old epochs" : ""))
        }
        if !report.complete {
            for f in report.failures.prefix(50) { fputs("sealgofer: not moved: \(f.path): \(f.message)\n", stderr) }
            if report.failures.count > 50 { fputs("sealgofer: … and \(report.failures.count - 50) more\n", stderr) }
            fputs("sealgofer: rotation incomplete: \(report.failures.count) file\(report.failures.count == 1 ? "" : "s") not moved; "
                  + "repair or remove them and run rotate again\n", stderr)
            throw ExitCode(report.failures.contains(where: \.isDamage) ? ExitStatus.damage : ExitStatus.usage)
        }
    }

    private func runRetire(_ material: KeyMaterial) throws {
        let report = try EpochRetirement.retire(path: store, key: material)
        if json {
            printJSON(["retired": report.retired.map { Int($0) }, "kept": Int(report.kept), "files": report.files,
                       "removedOrphans": report.removedOrphans, "refused": false])
        } else {
            for o in report.removedOrphans { print("removed orphan \(o)") }
            print(report.retired.isEmpty ? "retire: nothing to retire; epoch \(report.kept) is the only one"
                  : "retire: epoch\(report.retired.count == 1 ? "" : "s") \(report.retired.map(String.init).joined(separator: ", ")) "
                    + "removed; \(report.files) files, all under epoch \(report.kept)")
        }
    }
}

/// Exit statuses of rotate and rekey beyond ExitStatus's 0/1/2.
enum RotationExitStatus {
    /// The store's lock (a gofer or another command) or the keyring lock is held.
    static let busy: Int32 = 3
    /// `rotate --retire`: files still use an old epoch.
    static let retireRefused: Int32 = 4
}

/// A one-line progress bar on stderr with rate and ETA, drawn only on a terminal, ≤ 10 redraws/s.
final class RateProgressBar {
    private let label: String
    private let enabled = isatty(2) == 1
    private let start = Date()
    private var last = Date.distantPast
    private var drawn = false

    init(_ label: String) { self.label = label }

    func update(doneBytes: UInt64, totalBytes: UInt64, doneFiles: Int, totalFiles: Int) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.1 || doneFiles == totalFiles else { return }
        last = now
        let elapsed = now.timeIntervalSince(start)
        let fraction = totalBytes > 0 ? min(1, Double(doneBytes) / Double(totalBytes)) : Double(doneFiles) / Double(max(1, totalFiles))
        let width = 24, filled = Int(fraction * Double(width))
        let rate = elapsed > 0 ? Double(doneBytes) / elapsed : 0
        let eta = rate > 0 && totalBytes > doneBytes ? Double(totalBytes - doneBytes) / rate : 0
        let line = "\r\(label) [" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] "
            + "\(Int(fraction * 100))% \(doneFiles)/\(totalFiles) files \(formatBytes(doneBytes))/\(formatBytes(totalBytes)) "
            + "\(formatBytes(UInt64(rate)))/s ETA \(Self.clock(eta))"
        fputs(line + "\u{1B}[K", stderr)
        drawn = true
    }

    func finish() { if drawn { fputs("\r\u{1B}[K", stderr) } }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// Hidden: rotation throughput against raw libsodium decrypt+encrypt of the same bytes, interleaved
/// in one run (BENCHMARKS.md). Each round: baseline on 1 and on --jobs threads, a full rotation
/// (timed), then an untimed --retire so the keyring stays at one or two epochs.
struct DebugRotateBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "debug-rotate-bench", abstract: "(benchmark)", shouldDisplay: false)

    @Option var store: String
    @OptionGroup var key: KeyOptions
    @Option var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option var rounds: Int = 3
    @Flag(name: .customLong("no-sync")) var noSync = false
    @Option(name: .customLong("in-place-limit"), help: "Files up to this many bytes take the journaled move (default 65536).")
    var inPlaceLimit: UInt64?

    func run() throws {
        let material = try key.load()
        let info = try StoreInfo.gather(path: store)
        let suite = info.config.suite, chunk = info.config.chunkSize
        print("suite \(suite.name), chunk \(chunk), jobs \(jobs), \(noSync ? "--no-sync (one syncfs at the end)" : "syncs (a syncfs per step and batch)")")
        print("wall MB/s: rotate | raw decrypt+encrypt on 1 and \(jobs) threads | ratios;  MB per CPU-second: rotate | raw | ratio")
        print("round files     MB rotate-s  rotate   raw×1   raw×\(jobs)  r/raw×1 r/raw×\(jobs)   rot/cpu raw/cpu ratio")
        for round in 1...rounds {
            var options = RotationOptions()
            options.jobs = jobs
            options.syncs = !noSync
            if let inPlaceLimit { options.inPlaceLimit = inPlaceLimit }
            let c0 = RotationBenchmark.processCPUSeconds()
            let report = try StoreRotation.rotate(path: store, key: material, options: options)
            let cpu = RotationBenchmark.processCPUSeconds() - c0
            guard report.complete else { throw CLIError.usage("rotation incomplete: \(report.failures.first!.message)") }
            _ = try EpochRetirement.retire(path: store, key: material)
            let sample = Int(min(report.bytesMoved, 256 << 20))
            let raw1 = RotationBenchmark.rawReseal(suite: suite, chunkSize: chunk, bytes: sample, threads: 1)
            let rawN = RotationBenchmark.rawReseal(suite: suite, chunkSize: chunk, bytes: sample, threads: jobs)
            let mb = Double(report.bytesMoved) / 1e6
            let rate = mb / report.seconds
            print(String(format: "%5d %5d %6.0f %8.2f %7.0f %7.0f %7.0f %8.2f %8.2f %9.0f %7.0f %5.2f", round, report.moved, mb,
                         report.seconds, rate, raw1.wall, rawN.wall, rate / raw1.wall, rate / rawN.wall,
                         mb / cpu, raw1.perCPU, (mb / cpu) / raw1.perCPU))
        }
    }
}
