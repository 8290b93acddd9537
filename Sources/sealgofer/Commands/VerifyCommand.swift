import ArgumentParser

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "(not yet implemented)")
    func run() throws { throw ExitCode(2) }
}
