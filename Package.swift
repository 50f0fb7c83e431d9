// swift-tools-version:6.1
//
// ptrain: a deterministic, data-parallel trainer for the lecture's TwoLayerNet on the CPU.
//
// The target graph follows the data flow:
//   Dataset (IDX/gzip/SHA-256)  ->  Parallel (topology, pinned worker pool, barrier)
//   KernelCore -> KernelsAVX512 / KernelsAVX2 / Kernels (SIMD GEMM, exp, sigmoid, softmax; runtime dispatch)
//   Seeding (Philox4x32-10, the only random generator)
//   Model (parameter layout, backprop phases, reference twin, numerical gradient)
//   Training (sampler -> workers -> reducer -> SGD update)  ->  Checkpoint (safetensors)  ->  ptrain (CLI)
//   MPICollective (trait MPI: Training's Collective over Open MPI, for runs across processes)
//
// Dependencies:
// - swift-argument-parser: typed flags, `validate()`, usage errors and help text for the CLI.
// - System libraries (Debian packages, no vendored code): zlib1g-dev (gzip), libnuma-dev
//   (topology, pinning, node-local memory), libssl-dev (libcrypto's SHA-256, hardware-accelerated;
//   swift-crypto would add about four minutes of cold build for the same function).
// - Trait MPI (off by default): libopenmpi-dev (pkg-config ompi-c), for `mpirun -n R ptrain`;
//   `swift build -c release --traits MPI`. The default build neither needs nor links Open MPI.
//
// Code generation (docs/kernels.md): KernelsAVX2 is compiled with `-target-cpu haswell` (x86-64-v3)
// so its specializations of the generic kernels get AVX2 + FMA, KernelsAVX512 with
// `-target-cpu skylake-avx512` (x86-64-v4; Swift 6.3 does not accept `x86-64-v4` as a CPU name);
// `Kernels` checks the CPU at run time and uses each only where the CPU has its features. Those flags are `unsafeFlags`, acceptable for an
// application package (ptrain is not meant to be a versioned dependency).
import PackageDescription

#if arch(x86_64)
let avx2Flags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512"])]
#else
let avx2Flags: [SwiftSetting] = []
let avx512Flags: [SwiftSetting] = []
#endif

let package = Package(
    name: "ptrain",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ptrain", targets: ["ptrain"]),
        .library(name: "PTrain", targets: ["Dataset", "Kernels", "Model", "Parallel", "Seeding", "Training", "Checkpoint", "Plotting"]),
    ],
    traits: [
        .trait(name: "MPI", description: "Train across processes and machines with Open MPI (mpirun -n R ptrain ...)."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Thin C interop: no logic lives here.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CNuma", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CSupport"),

        .target(
            name: "Dataset",
            dependencies: ["CZlib", "CCrypto", "KernelCore"],
            resources: [.copy("Resources/MNIST")]
        ),
        .target(name: "KernelCore"),
        .target(name: "KernelsAVX2", dependencies: ["KernelCore"], swiftSettings: avx2Flags),
        .target(name: "KernelsAVX512", dependencies: ["KernelCore"], swiftSettings: avx512Flags),
        .target(name: "Kernels", dependencies: ["KernelCore", "KernelsAVX2", "KernelsAVX512", "CSupport"]),
        .target(name: "Seeding"),
        .target(name: "Model", dependencies: ["Kernels", "Seeding", "CSupport"]),
        .target(name: "Parallel", dependencies: ["CNuma", "CSupport"]),
        .target(name: "Training", dependencies: ["Dataset", "Kernels", "Model", "Parallel", "Seeding", "CSupport"]),
        .target(name: "Checkpoint", dependencies: ["Dataset", "Model", "Training"]),
        .target(name: "Plotting"),
        .target(name: "MPICollective", dependencies: [
            "Training", "Parallel", .target(name: "CMPI", condition: .when(traits: ["MPI"])),
        ]),
        .executableTarget(
            name: "ptrain",
            dependencies: [
                "Training", "Checkpoint", "Plotting", "Dataset", "Parallel", "Kernels",
                .target(name: "MPICollective", condition: .when(traits: ["MPI"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .target(name: "TestSupport", dependencies: ["Model", "Kernels", "Training"], path: "Tests/TestSupport"),
        .testTarget(
            name: "PTrainTests",
            dependencies: ["TestSupport", "Dataset", "Kernels", "KernelCore", "Model", "Parallel", "Seeding", "Training", "Checkpoint", "Plotting", "ptrain"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
