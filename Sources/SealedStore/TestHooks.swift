/// Points inside a commit where tests can simulate a crash in-process (the SIGKILL test covers the
/// real thing). Never set in production; checking it costs one load per step.
enum CommitStep: String { case directWritten, journalWritten, chunksApplied, sidecarWritten, headerWritten }

/// Points inside namespace operations (Keys/README.md §7.1), after the named on-disk change.
enum NamespaceStep: String, CaseIterable {
    /// create: meta/pending/<id>.new exists (header written; for import, chunks too).
    case createIntent
    /// create: the sidecar exists.
    case createSidecar
    /// create: the file is named under data/ (renamed there; with the link fallback, meta/pending/<id>.new not yet removed).
    case createLinked
    /// removal: meta/pending/<id>.unlink (or .unlinking) exists; the caller's unlink has not run.
    case unlinkIntent
    /// removal: the caller's unlink/rename has run (a crash point only: nothing there can fail).
    case unlinkDone
    /// removal of a file still open: meta/pending/<id>.gone exists.
    case goneRecorded
    /// removal: journal and sidecar removed, the intent not yet.
    case metadataRemoved

    var canFail: Bool { self != .unlinkDone }
}

/// Thrown by a simulated crash: unlike a real error, nothing is cleaned up on the way out, so the
/// disk is left exactly as a process death at that point would leave it.
struct SimulatedCrash: Error, CustomStringConvertible {
    let step: String
    var description: String { "simulated crash after \(step)" }
}

enum TestHooks {
    nonisolated(unsafe) static var crashAt: CommitStep?
    /// Simulated process death after a namespace step (no cleanup; reopen the store to recover).
    nonisolated(unsafe) static var namespaceCrashAt: NamespaceStep?
    /// Simulated I/O error after a namespace step (the operation cleans up and throws).
    nonisolated(unsafe) static var namespaceFailAt: NamespaceStep?
    /// Makes `removingLink` behave as if no hard link could be made (the `.unlinking` fallback).
    nonisolated(unsafe) static var noPendingLinks = false

    static func step(_ s: CommitStep) throws {
        if let c = crashAt, c == s { throw SealedStoreError.internal("simulated crash after \(s.rawValue)") }
    }

    static func step(_ s: NamespaceStep) throws {
        if let c = namespaceCrashAt, c == s { throw SimulatedCrash(step: s.rawValue) }
        if let f = namespaceFailAt, f == s, s.canFail { throw SealedStoreError.io("injected failure after \(s.rawValue)", EIO) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
