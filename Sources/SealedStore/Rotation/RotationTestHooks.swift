/// Points inside a file move and a rekey where tests simulate a crash in-process (the SIGKILL
/// tests cover the real thing). Never set in production; one load per step.
enum RotationStep: String, CaseIterable {
    /// Replacing move (ReplacingMover): new file written in meta/pending; its sidecar; the old
    /// file linked as `.unlink` (staged); renamed over the old name (switched).
    case stagedFile, stagedSidecar, staged, switched
    /// A spare inode renamed to `.new`, nothing written into it yet (`SpareInodes`).
    case reusedSpare
    /// Journaled move (JournaledMover, files with hard links).
    case journalWritten, chunksApplied, sidecarWritten, headerWritten
    case rekeyBeforeReplace
}

/// Thrown at a `RotationStep` under test: the process "dies" there, so nothing is undone.
struct SimulatedRotationCrash: Error, CustomStringConvertible {
    let step: RotationStep
    var description: String { "simulated crash after \(step.rawValue)" }
}

enum RotationTestHooks {
    nonisolated(unsafe) static var crashAt: RotationStep?
    /// Passes of `crashAt` to let through before crashing (single-worker tests).
    nonisolated(unsafe) static var passes = 0

    static func step(_ s: RotationStep) throws {
        guard let c = crashAt, c == s else { return }
        if passes > 0 { passes -= 1; return }
        throw SimulatedRotationCrash(step: s)
    }
}
