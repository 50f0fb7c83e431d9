import FuzzDriver
import Dataset

/// One input: parsed as an images file and as a labels file (gzip or raw, as `--data` would),
/// then, when both parse, paired as a dataset split. Errors are expected; crashes, hangs and
/// oversized allocations are findings.
func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let images = try? IDXFile(fileBytes: bytes, expectedRank: 3, path: "fuzz-images")
    let labels = try? IDXFile(fileBytes: bytes, expectedRank: 1, path: "fuzz-labels")
    if let images, let labels {
        _ = try? LabeledImages(images: images, imagesPath: "fuzz-images", labels: labels, labelsPath: "fuzz-labels")
    }
    return 0
}

/// SwiftPM links an executable's entry as `FuzzIDX_main`; hand control to libFuzzer from there.
@_cdecl("FuzzIDX_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { fuzzIDX($0, $1) }
}
