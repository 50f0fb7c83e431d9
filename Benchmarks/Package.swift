// swift-tools-version:6.0
//
// ptrain's benchmarks, a package of their own so the main build and CI never pay for them.
// Run from the repository root:
//   swift run -c release --package-path Benchmarks ptrain-bench kernels
//   swift run -c release --package-path Benchmarks ptrain-bench scaling
import PackageDescription

#if arch(x86_64)
let fmaFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let fmaFlags: [SwiftSetting] = []
#endif

let package = Package(
    name: "ptrain-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "ptrain", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The machine's FMA ceiling: a chain loop compiled for the same target as the AVX2 kernels.
        .target(name: "FMAPeak", swiftSettings: fmaFlags),
        .executableTarget(
            name: "ptrain-bench",
            dependencies: [
                "FMAPeak",
                .product(name: "PTrain", package: "ptrain"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
