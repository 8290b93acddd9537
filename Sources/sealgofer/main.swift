import ArgumentParser

/// Entry point. Each subcommand lives in its own file under Commands/.
struct Sealgofer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sealgofer",
        abstract: "Encrypted-at-rest lisafs gofer for gVisor sandboxes.",
        subcommands: [
            ServeCommand.self,
            InitCommand.self, ImportCommand.self, ExportCommand.self,
            VerifyCommand.self, InfoCommand.self,
        ]
    )
}
Sealgofer.main()
