// swift-tools-version:6.0
// libFuzzer targets, kept out of the main package: they only build with
// -sanitize=fuzzer (see ./run). The main package is a path dependency, so the
// fuzzed code is exactly what ships, instrumented by this build's flags.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its directory, which differs between
// clones (main, wt-*, CI's folder), so derive it instead of spelling it out.
let rootDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = rootDirectory.lastPathComponent.lowercased()

let package = Package(
    name: "SealgoferFuzz",
    dependencies: [
        .package(path: rootDirectory.path),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .target(name: "FuzzDriver"),
        // Input: 2-byte little-endian MID + request payload → AnyRequest.decode.
        .executableTarget(
            name: "FuzzWireRequest",
            dependencies: ["FuzzDriver", .product(name: "Lisafs", package: rootIdentity)]
        ),
        // Input: records [u16 MID][u16 length][payload] → a connection of a
        // Server over a HostProvider on a throwaway tmpfs tree.
        .executableTarget(
            name: "FuzzDispatch",
            dependencies: ["FuzzDriver", .product(name: "Lisafs", package: rootIdentity),
                           .product(name: "HostProvider", package: rootIdentity),
                           .product(name: "Logging", package: "swift-log")]
        ),
        // Input: parser selector byte + on-disk bytes → the sealed store's parsers
        // (internal API: built with -enable-testing, see ./run).
        .executableTarget(
            name: "FuzzStoreParsers",
            dependencies: ["FuzzDriver", .product(name: "SealedStore", package: rootIdentity)]
        ),
    ],
    swiftLanguageModes: [.v5]
)
