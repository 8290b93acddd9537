import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds `runsc-sealgofer` (Integrations/runsc), building it in the source tree when
/// sealgofer runs from a build directory and the launcher is missing there.
enum LauncherLocator {
    static let name = "runsc-sealgofer"

    static let howToBuild = """
        build it with Integrations/runsc/build (needs golang-go, golang-gvisor-gvisor-dev and runsc; \
        see Integrations/runsc/README.md), then install it next to sealgofer or in /usr/local/bin, \
        or pass --launcher PATH
        """

    /// The sealgofer executable itself (for the dev.sealgofer.binary annotation).
    static func ownExecutable() throws -> String {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            throw CLIError.usage("cannot read /proc/self/exe")
        }
        return path
    }

    /// In order: --launcher, $SEALGOFER_LAUNCHER, next to sealgofer, the source tree's
    /// Integrations/runsc/bin (built on demand), /usr/local/bin, $PATH.
    static func locate(explicit: String?, executable: String) throws -> String {
        if let explicit { return try checked(explicit, from: "--launcher") }
        if let env = ProcessInfo.processInfo.environment["SEALGOFER_LAUNCHER"], !env.isEmpty {
            return try checked(env, from: "$SEALGOFER_LAUNCHER")
        }
        let executableDirectory = (executable as NSString).deletingLastPathComponent
        let sibling = executableDirectory + "/" + name
        if isExecutable(sibling) { return sibling }
        if let tree = sourceTree(above: executableDirectory) {
            let built = tree + "/Integrations/runsc/bin/" + name
            if isExecutable(built) { return built }
            return try build(in: tree, expecting: built)
        }
        for candidate in ["/usr/local/bin/" + name]
            + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map({ "\($0)/\(name)" })
        where isExecutable(candidate) {
            return candidate
        }
        throw CLIError.usage("\(name) not found; \(howToBuild)")
    }

    private static func checked(_ path: String, from source: String) throws -> String {
        guard isExecutable(path) else { throw CLIError.usage("\(source): \(path) is not an executable file") }
        return path
    }

    private static func isExecutable(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && access(path, X_OK) == 0
    }

    /// The repository checkout holding a build directory (…/.build/<config>/sealgofer).
    private static func sourceTree(above directory: String) -> String? {
        var current = directory
        while current != "/" && !current.isEmpty {
            if isExecutable(current + "/Integrations/runsc/build") { return current }
            current = (current as NSString).deletingLastPathComponent
        }
        return nil
    }

    private static func build(in tree: String, expecting built: String) throws -> String {
        fputs("sealgofer run: \(built) is missing; building it (Integrations/runsc/build)…\n", stderr)
        let status = try ChildProcess.spawn([tree + "/Integrations/runsc/build"], stdout: 2, ownProcessGroup: false).wait()
        guard status == 0, isExecutable(built) else {
            throw CLIError.usage("building \(name) failed (exit \(status)); \(howToBuild)")
        }
        return built
    }
}
