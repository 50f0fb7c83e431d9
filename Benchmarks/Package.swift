// swift-tools-version:6.0
//
// ptrain's benchmarks, a package of their own so the main build and CI never pay for them.
// Run from the repository root:
//   swift run -c release --package-path Benchmarks ptrain-bench kernels
//   swift run -c release --package-path Benchmarks ptrain-bench scaling
import PackageDescription

#if arch(x86_64)
let fmaFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
let fma512Flags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512"])]
#else
let fmaFlags: [SwiftSetting] = []
let fma512Flags: [SwiftSetting] = []
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
        // The AVX-512 ceiling, compiled like the avx512 kernels; used only where the CPU has it.
        .target(name: "FMAPeak512", dependencies: ["FMAPeak"], swiftSettings: fma512Flags),
        .executableTarget(
            name: "ptrain-bench",
            dependencies: [
                "FMAPeak",
                "FMAPeak512",
                .product(name: "PTrain", package: "ptrain"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
