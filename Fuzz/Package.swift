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
    dependencies: [.package(path: rootDirectory.path)],
    targets: [
        .target(name: "FuzzDriver"),
        // Input: 2-byte little-endian MID + request payload → AnyRequest.decode.
        .executableTarget(
            name: "FuzzWireRequest",
            dependencies: ["FuzzDriver", .product(name: "Lisafs", package: rootIdentity)]
        ),
    ],
    swiftLanguageModes: [.v5]
)
