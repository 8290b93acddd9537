#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct RetirementReport: Sendable {
    /// Epochs removed from the keyring (their master keys are gone).
    public var retired: [UInt32] = []
    /// The epoch that remains (the encrypting one).
    public var kept: UInt32
    public var files = 0
    /// Leftovers of retired epochs that no data file refers to (sidecars, journals), removed.
    public var removedOrphans: [String] = []
}

/// `rotate --retire` refused: files (or unreplayable journals) still need an old epoch.
public struct RetirementRefused: Error, CustomStringConvertible, Sendable {
    public struct User: Sendable { public var path: String; public var epoch: UInt32? ; public var reason: String }
    public var users: [User]
    /// A rotation to this epoch was interrupted; rerunning `rotate` finishes it.
    public var rotationInProgress: UInt32?

    public var description: String {
        let shown = users.prefix(20).map { "  \($0.path): \($0.reason)" }
        let more = users.count > 20 ? ["  … and \(users.count - 20) more"] : []
        let hint = rotationInProgress.map { "a rotation to epoch \($0) is unfinished: run `sealgofer rotate` again to finish it" }
            ?? "run `sealgofer rotate` first, or repair the named files (see `sealgofer verify`)"
        return "cannot retire old epochs: \(users.count) file\(users.count == 1 ? "" : "s") still use\(users.count == 1 ? "s" : "") them; "
            + hint + "\n" + (shown + more).joined(separator: "\n")
    }
}

/// Removes every epoch but the encrypting one once no file uses it (Keys/README.md §10): afterwards
/// an old master key, even if compromised, decrypts nothing left in the store.
public enum EpochRetirement {
    public static func retire(path: String, key: KeyMaterial) throws -> RetirementReport {
        let lock = try KeyringLock.acquire(storePath: path)
        defer { lock.release() }
        let store = try SealedStore.open(at: path, key: key)
        defer { store.close() }
        let keep = store.keyring.currentEpoch
        var report = RetirementReport(kept: keep)

        // 1. Every data file, opened as any reader opens it: interrupted commits (including an
        //    interrupted move of a rotation) are replayed and leftovers of completed moves removed.
        let list = try DataFileList.scan(dataFD: store.dataDirectory)
        report.files = list.entries.count
        var users: [RetirementRefused.User] = []
        var liveIDs = Set<FileID>()
        for entry in list.entries {
            let fd = try openBeneath(store.dataDirectory, entry.components, flags: O_RDWR)
            defer { close(fd) }
            do {
                let state = try FileState.load(store: store, fd: fd)
                liveIDs.insert(state.header.fileID)
                if state.header.epoch != keep {
                    users.append(.init(path: entry.path, epoch: state.header.epoch, reason: "epoch \(state.header.epoch)"))
                }
            } catch {
                // Unreadable: it blocks retirement unless its (unauthenticated) header names the kept epoch.
                let header = (try? readBytes(fd: fd, count: FileHeader.length, offset: 0, what: "read header")).flatMap(FileHeader.parseFields)
                if let header { liveIDs.insert(header.fileID) }
                if header?.epoch != keep {
                    users.append(.init(path: entry.path, epoch: header?.epoch, reason: "\(error)"))
                }
            }
        }

        // 2. Journals still present belong to files that failed to load (counted above) or to no file.
        //    A journal's chunks may be sealed under an old epoch: an orphan of an old epoch is removed.
        let marker = try RotationMarker.read(metaFD: store.layout.metaFD)
        var orphanJournals: [String] = []
        for (name, _) in try listDirectory(store.layout.journalFD) {
            if name.hasSuffix(".j.tmp") { orphanJournals.append(name); continue }   // never committed
            guard name.hasSuffix(".j"), let id = FileID(hex: String(name.dropLast(2))) else { continue }
            guard !liveIDs.contains(id) else { continue }
            let epochs = journalEpochs(store.layout.journalFD, name)
            if epochs.isEmpty || epochs.contains(where: { $0 != keep }) { orphanJournals.append(name) }
        }
        // 3. Sidecars of old epochs that no data file refers to.
        var orphanSidecars: [(dir: String, name: String)] = []
        for (dir, _) in try listDirectory(store.layout.filesFD) where dir.count == 2 {
            let sub = try openDirectory(store.layout.filesFD, dir)
            defer { close(sub) }
            for (name, _) in try listDirectory(sub) {
                if name.hasSuffix(".sc.tmp") { orphanSidecars.append((dir, name)); continue }
                guard name.hasSuffix(".sc"), let id = FileID(hex: String(name.dropLast(3))), !liveIDs.contains(id) else { continue }
                let bytes = try? readFileAt(sub, name, limit: Sidecar.length + 1)
                if bytes.flatMap(Sidecar.parseFields)?.epoch != keep { orphanSidecars.append((dir, name)) }
            }
        }

        guard users.isEmpty else {
            throw RetirementRefused(users: users, rotationInProgress: marker.map(\.targetEpoch))
        }
        // Everything a rotation wrote must be on disk before the key that could read the old
        // copies disappears.
        try store.syncAll()
        for name in orphanJournals {
            unlinkat(store.layout.journalFD, name, 0)
            report.removedOrphans.append("meta/journal/\(name)")
        }
        for (dir, name) in orphanSidecars {
            let sub = try openDirectory(store.layout.filesFD, dir)
            unlinkat(sub, name, 0)
            close(sub)
            report.removedOrphans.append("meta/files/\(dir)/\(name)")
        }
        report.retired = store.keyring.epochs.map(\.id).filter { $0 != keep }.sorted()
        if !report.retired.isEmpty {
            try store.keyring.keepingOnly(epochs: [keep]).replaceFile(rootFD: store.layout.rootFD)
        }
        if marker != nil { try RotationMarker.remove(metaFD: store.layout.metaFD) }
        return report
    }

    /// Epochs named by a journal's (unauthenticated) new sidecar and new header.
    private static func journalEpochs(_ dir: Int32, _ name: String) -> [UInt32] {
        let fd = openAt(dir, name, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        guard let bytes = try? readBytes(fd: fd, count: 24 + Sidecar.length + FileHeader.length, offset: 0, what: "read journal"),
              bytes.count == 24 + Sidecar.length + FileHeader.length else { return [] }
        var out: [UInt32] = []
        if let sc = Sidecar.parseFields(Array(bytes[24..<(24 + Sidecar.length)])) { out.append(sc.epoch) }
        if let h = FileHeader.parseFields(Array(bytes[(24 + Sidecar.length)...])) { out.append(h.epoch) }
        return out
    }
}
