import FuzzDriver
import Checkpoint

/// One input: decoded as a ptrain checkpoint (safetensors header, tensors, metadata, digest).
func fuzzCheckpoint(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? TrainingCheckpoint.decode(bytes, path: "fuzz")
    return 0
}

/// SwiftPM links an executable's entry as `FuzzCheckpoint_main`; hand control to libFuzzer from there.
@_cdecl("FuzzCheckpoint_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { fuzzCheckpoint($0, $1) }
}
