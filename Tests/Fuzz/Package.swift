// swift-tools-version:6.0
//
// libFuzzer targets for ptrain's two readers of untrusted files (the checkpoint reader twice: raw
// bytes, and edits of a real checkpoint's metadata). Build and run with
// Tests/Fuzz/run.sh (it passes -sanitize=fuzzer,address); not part of the main build.
import PackageDescription

let package = Package(
    name: "ptrain-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "ptrain", path: "../..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "FuzzIDX", dependencies: ["FuzzDriver", .product(name: "PTrain", package: "ptrain")]),
        .executableTarget(name: "FuzzCheckpoint", dependencies: ["FuzzDriver", .product(name: "PTrain", package: "ptrain")]),
        .executableTarget(name: "FuzzCheckpointMetadata", dependencies: ["FuzzDriver", .product(name: "PTrain", package: "ptrain")]),
    ],
    swiftLanguageModes: [.v5]
)
