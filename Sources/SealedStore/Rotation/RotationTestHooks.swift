/// Points inside a file move and a rekey where tests simulate a crash in-process (the SIGKILL
/// tests cover the real thing). Never set in production; one load per step.
enum RotationStep: String {
    case journalWritten, chunksApplied, sidecarWritten, headerWritten
    case rekeyBeforeReplace
}

enum RotationTestHooks {
    nonisolated(unsafe) static var crashAt: RotationStep?

    static func step(_ s: RotationStep) throws {
        if let c = crashAt, c == s { throw SealedStoreError.internal("simulated crash after \(s.rawValue)") }
    }
}
