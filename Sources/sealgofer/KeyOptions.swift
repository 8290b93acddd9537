import ArgumentParser
import Hardening
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

/// `--key-file F | --passphrase-file F`, or a passphrase typed on the terminal.
struct KeyOptions: ParsableArguments {
    @Option(name: .customLong("key-file"), help: "File holding the 32-byte store key.")
    var keyFile: String?

    @Option(name: .customLong("passphrase-file"), help: "File holding the passphrase (one trailing newline ignored).")
    var passphraseFile: String?

    func validate() throws {
        if keyFile != nil && passphraseFile != nil {
            throw ValidationError("give either --key-file or --passphrase-file, not both")
        }
    }

    /// The key to open an existing store. Core dumps are off from here on:
    /// every command that holds a key is non-dumpable.
    func load() throws -> KeyMaterial {
        try Hardening.disableCoreDumps()
        if let keyFile { return try KeyMaterial.readKeyFile(path: keyFile) }
        if let passphraseFile { return try KeyMaterial.readPassphraseFile(path: passphraseFile) }
        return try TerminalPrompt.passphrase(confirm: false)
    }

    /// The key for `init`: a missing key file is created with a fresh random key.
    func loadOrCreate() throws -> (KeyMaterial, createdKeyFile: Bool) {
        try Hardening.disableCoreDumps()
        if let keyFile {
            if access(keyFile, F_OK) != 0 { return (try KeyMaterial.createKeyFile(path: keyFile), true) }
            return (try KeyMaterial.readKeyFile(path: keyFile), false)
        }
        if let passphraseFile { return (try KeyMaterial.readPassphraseFile(path: passphraseFile), false) }
        return (try TerminalPrompt.passphrase(confirm: true), false)
    }
}

/// Reads a passphrase from /dev/tty with echo off.
enum TerminalPrompt {
    static func passphrase(confirm: Bool) throws -> KeyMaterial {
        guard isatty(0) == 1 else {
            throw CLIError.usage("no key given: use --key-file or --passphrase-file (no terminal to prompt on)")
        }
        var first = try read(prompt: "Passphrase: ")
        guard !first.isEmpty else { throw CLIError.usage("empty passphrase") }
        let secret = SecretBytes(consuming: &first)
        if confirm {
            var second = try read(prompt: "Repeat passphrase: ")
            let again = SecretBytes(consuming: &second)
            guard again.equals(secret) else {
                throw CLIError.usage("passphrases do not match")
            }
        }
        return .passphrase(secret)
    }

    private static func read(prompt: String) throws -> [UInt8] {
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { throw CLIError.usage("cannot open the terminal to prompt for a passphrase") }
        defer { close(tty) }
        _ = prompt.withCString { write(tty, $0, strlen($0)) }
        var saved = termios()
        let haveTerm = tcgetattr(tty, &saved) == 0
        if haveTerm {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(tty, TCSAFLUSH, &quiet)
        }
        defer {
            if haveTerm { var s = saved; tcsetattr(tty, TCSAFLUSH, &s) }
            _ = "\n".withCString { write(tty, $0, 1) }
        }
        var out: [UInt8] = []
        var byte: UInt8 = 0
        while Glibc.read(tty, &byte, 1) == 1 && byte != 10 { out.append(byte) }
        if out.last == 13 { out.removeLast() }
        return out
    }
}
