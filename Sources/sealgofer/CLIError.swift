import ArgumentParser
import SealedStore
#if canImport(Glibc)
import Glibc
#endif

/// Usage problems found after parsing (exit 2).
enum CLIError: Error, CustomStringConvertible {
    case usage(String)
    var description: String { if case .usage(let s) = self { return s }; return "" }
}

/// Exit statuses of the offline tools: 0 ok, 1 damage found, 2 usage or key error (and any other
/// failure that prevents the check).
enum ExitStatus {
    static let ok: Int32 = 0
    static let damage: Int32 = 1
    static let usage: Int32 = 2

    /// Prints one line on stderr and returns the exit code for `error`. `damageIsFinding`: in
    /// verify, a damaged keyring/config is a finding (1), elsewhere a key error (2).
    static func report(_ error: Error, damageIsFinding: Bool = false) -> ExitCode {
        let code: Int32
        let message: String
        switch error {
        case let e as SealedStoreError:
            message = e.description
            switch e {
            case .damaged: code = damage
            case .keyringDamaged, .configDamaged: code = damageIsFinding ? damage : usage
            default: code = usage
            }
        case let e as CLIError: message = e.description; code = usage
        default: message = "\(error)"; code = usage
        }
        fputs("sealgofer: \(message)\n", stderr)
        return ExitCode(code)
    }
}

/// Prints a dictionary as sorted-key JSON on stdout.
import Foundation
func printJSON(_ object: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
       let s = String(data: data, encoding: .utf8) {
        print(s)
    }
}
