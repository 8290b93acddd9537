import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// Entry point. Each subcommand lives in its own file under Commands/.
struct Sealgofer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sealgofer",
        abstract: "Encrypted-at-rest lisafs gofer for gVisor sandboxes.",
        subcommands: [
            ServeCommand.self,
            InitCommand.self, ImportCommand.self, ExportCommand.self,
            VerifyCommand.self, InfoCommand.self, RekeyCommand.self, RotateCommand.self,
            RunCommand.self, DebugRotateBenchCommand.self,
            DebugCommitLoopCommand.self, DebugBenchCommand.self,
            DebugNamespaceLoopCommand.self,
        ]
    )
}

// Usage errors exit 2 with one line on stderr (ArgumentParser's default would be 64).
do {
    var command = try Sealgofer.parseAsRoot()
    try command.run()
} catch {
    if Sealgofer.exitCode(for: error) == .validationFailure {
        fputs("sealgofer: \(Sealgofer.message(for: error)) (see --help)\n", stderr)
        exit(2)
    }
    Sealgofer.exit(withError: error)
}
