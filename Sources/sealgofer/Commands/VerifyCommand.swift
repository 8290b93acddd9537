import ArgumentParser
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check keyring, sidecars, every chunk, sizes and orphans offline.",
        discussion: "Exit 0: clean. 1: damage found (each damaged file and chunk named). 2: usage or key error. "
            + "Interrupted commits are replayed and interrupted creates/removals finished first, as any open of the store does.")

    @Option(help: "Store directory.") var store: String
    @OptionGroup var key: KeyOptions
    @Flag(help: "Machine-readable report on stdout.") var json = false

    func run() throws {
        let s: SealedStore
        do {
            s = try SealedStore.open(at: store, key: try key.load())
        } catch let e as SealedStoreError {
            switch e {
            case .keyringDamaged, .configDamaged:
                if json {
                    printJSON(["ok": false, "damage": [["kind": e.isKeyring ? "keyring" : "config", "detail": e.description]]])
                } else {
                    print("DAMAGED \(e.isKeyring ? "keyring" : "config"): \(e.description)")
                }
                throw ExitStatus.report(e, damageIsFinding: true)
            default: throw ExitStatus.report(e)
            }
        } catch {
            throw ExitStatus.report(error)
        }
        defer { s.close() }
        let bar = ProgressBar("verify", enabled: !json)
        let report = Verifier.run(store: s) { bar.update(done: $0, total: $1) }
        bar.finish()
        if json {
            printJSON([
                "ok": report.isClean, "files": report.files, "directories": report.directories, "symlinks": report.symlinks,
                "chunks": report.chunks, "plaintextBytes": report.plaintextBytes, "sidecars": report.sidecars,
                "recoveredJournals": report.recoveredJournals,
                "recoveredOperations": report.recoveredOperations, "notes": report.notes,
                "damage": report.damage.map { d -> [String: Any] in
                    var o: [String: Any] = ["kind": d.kind.rawValue, "detail": d.detail]
                    if let p = d.path { o["path"] = p }
                    if let id = d.fileID { o["fileID"] = id.hex }
                    if let c = d.chunk { o["chunk"] = c }
                    return o
                },
            ])
        } else {
            for d in report.damage {
                var line = "DAMAGED \(d.path ?? "?")"
                if let c = d.chunk { line += " chunk \(c)" }
                if let id = d.fileID { line += " [file \(id.hex)]" }
                print(line + ": \(d.kind.rawValue): \(d.detail)")
            }
            for n in report.notes { print("note: \(n)") }
            print("verified \(report.files) files, \(report.chunks) chunks, \(report.sidecars) sidecars"
                  + (report.recoveredJournals > 0 ? ", replayed \(report.recoveredJournals) interrupted commits" : "")
                  + (report.recoveredOperations > 0 ? ", finished \(report.recoveredOperations) interrupted creates/removals" : "")
                  + ": \(report.isClean ? "clean" : "\(report.damage.count) problems")")
        }
        if !report.isClean {
            fputs("sealgofer: damage found in \(Set(report.damage.map { $0.path ?? "" }).count) places\n", stderr)
            throw ExitCode(ExitStatus.damage)
        }
    }
}

extension SealedStoreError {
    var isKeyring: Bool { if case .keyringDamaged = self { return true }; return false }
}
