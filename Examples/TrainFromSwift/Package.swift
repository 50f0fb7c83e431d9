// swift-tools-version:6.1
//
// Training from Swift code in another package: the PTrain library product through a path
// dependency (ptrain's kernels are built with -target-cpu flags, which SwiftPM accepts from a
// local package but not from a versioned one). CI builds this package; from the repository root:
//   swift run -c release --package-path Examples/TrainFromSwift
import PackageDescription

let package = Package(
    name: "TrainFromSwift",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "ptrain", path: "../..")],
    targets: [
        .executableTarget(name: "TrainFromSwift", dependencies: [.product(name: "PTrain", package: "ptrain")]),
    ],
    swiftLanguageModes: [.v6]
)
