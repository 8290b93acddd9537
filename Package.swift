// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "sealgofer",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sealgofer", targets: ["sealgofer"]),
        .library(name: "Lisafs", targets: ["Lisafs"]),
        .library(name: "SealedStore", targets: ["SealedStore"]),
        .library(name: "HostProvider", targets: ["HostProvider"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
    ],
    targets: [
        // libsodium from the system (apt: libsodium-dev).
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        // xxHash: the in-memory change-detection digest of SealedProvider.
        .systemLibrary(
            name: "CXXHash",
            pkgConfig: "libxxhash",
            providers: [.apt(["libxxhash-dev"])]
        ),
        // Thin C shims for Linux calls Swift cannot make directly.
        .target(name: "CLinux"),
        // lisafs wire format, communicators, server, FD table, node tree, Provider protocol. No crypto.
        .target(
            name: "Lisafs",
            dependencies: [
                "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // Keys, chunk format, sidecars, commit journal, verify, rotate. No protocol.
        .target(
            name: "SealedStore",
            dependencies: ["CSodium", "CLinux"]
        ),
        // Plaintext passthrough provider (like gVisor's fsgofer).
        .target(
            name: "HostProvider",
            dependencies: ["Lisafs", "CLinux", .product(name: "Logging", package: "swift-log")]
        ),
        // Serves data/ of a sealed store: plaintext scratch files donated to the client, sealed on commit.
        .target(
            name: "SealedProvider",
            dependencies: ["Lisafs", "SealedStore", "CLinux", "CSodium", "CXXHash", .product(name: "Logging", package: "swift-log")]
        ),
        // `swift run -c release sealed-bench`: the SealedProvider figures of BENCHMARKS.md.
        .executableTarget(
            name: "sealed-bench",
            dependencies: ["SealedProvider", "HostProvider", "SealedStore", "Lisafs", "CLinux", "CSodium",
                           .product(name: "Logging", package: "swift-log")],
            path: "Sources/SealedBench"
        ),
        // seccomp, core-dump suppression, capability dropping for the gofer process.
        .target(
            name: "Hardening",
            dependencies: ["CLinux", .product(name: "Logging", package: "swift-log")]
        ),
        // Child process for HardeningTests: applies one hardening step, then probes it.
        .executableTarget(name: "hardening-probe", dependencies: ["Hardening"]),
        .executableTarget(
            name: "sealgofer",
            dependencies: [
                "Lisafs", "HostProvider", "SealedStore", "SealedProvider", "CLinux", "Hardening",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "LisafsTests", dependencies: ["Lisafs", "HostProvider", "CLinux"], exclude: ["Fixtures"]),
        .testTarget(name: "HardeningTests", dependencies: ["Hardening", "hardening-probe"]),
        .testTarget(name: "HostileClientTests", dependencies: ["Lisafs"]),
        // Depends on the executable so CLI tests (verify exit codes, the SIGKILL crash test) can run it.
        .testTarget(name: "SealedProviderTests", dependencies: ["SealedProvider", "SealedStore", "Lisafs", "CLinux", "sealgofer",
                                                            .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SealedStoreTests", dependencies: ["SealedStore", "CSodium", "sealgofer"], resources: []),
        .testTarget(name: "InteropTests", dependencies: []),
        // Real gVisor sandboxes on an encrypted mount (runs Tests/Sandbox/run; needs root, runsc, go).
        .testTarget(name: "SandboxTests", dependencies: ["sealgofer"]),
        // rekey / rotate / retire: CLI end to end, SIGKILL resumption, store lock against a running gofer.
        .testTarget(name: "RotationTests", dependencies: ["SealedStore", "Lisafs", "CLinux", "sealgofer"]),
    ],
    swiftLanguageModes: [.v5]
)
