/// Points inside a commit where tests can simulate a crash in-process (the SIGKILL test covers the
/// real thing). Never set in production; checking it costs one load per step.
enum CommitStep: String { case directWritten, journalWritten, chunksApplied, sidecarWritten, headerWritten }

enum TestHooks {
    nonisolated(unsafe) static var crashAt: CommitStep?

    static func step(_ s: CommitStep) throws {
        if let c = crashAt, c == s { throw SealedStoreError.internal("simulated crash after \(s.rawValue)") }
    }
}
