import Dataset
import Kernels
import Model

/// How layer 1 reads the training pixels. Both encodings give the same bits (the sparse kernels
/// run the dense GEMM's multiply-add chains minus their zero terms, `KernelCore.SparseKernels`),
/// so this is a speed setting, like `--workers`, and not part of a checkpoint's identity.
public enum InputChoice: String, CaseIterable, Sendable, Codable {
    /// Sparse on sparse data, dense on dense data, and in between whichever `InputCalibration`'s
    /// cost model, measured on this machine for the run, finds cheaper.
    case auto
    /// Normalize every pixel into a dense batch and multiply with the GEMM.
    case dense
    /// Multiply only the non-zero pixels (compressed sparse rows built at start-up).
    case sparse

    /// The encoding a run of `images` uses; a failure with a reason when `.sparse` cannot be
    /// honoured. `.auto` reads sparse up to a density of `InputCalibration.sparseUpTo`, dense above
    /// `InputCalibration.denseFrom`, and in between measures both in short runs of `trial`
    /// (without `trial` it reads dense there).
    public func resolve(for images: LabeledImages, trial: InputTrial? = nil)
        -> Result<InputEncoding, InputChoiceError> {
        switch self {
        case .dense: return .success(.dense)
        case .sparse:
            guard SparseImages.supports(images) else {
                return .failure(InputChoiceError(message: "images of \(images.pixelsPerImage) pixels are too large for the sparse input (at most 65535); use --input dense"))
            }
            return .success(.sparse)
        case .auto:
            guard SparseImages.supports(images) else { return .success(.dense) }
            let density = SparseImages.density(images)
            if density <= InputCalibration.sparseUpTo { return .success(.sparse) }
            guard density <= InputCalibration.denseFrom, let trial else { return .success(.dense) }
            return .success(InputCalibration.measure(images, trial: trial))
        }
    }
}

/// The encoding a run actually uses.
public enum InputEncoding: String, Sendable, Codable {
    case dense
    case sparse
}

/// `--input sparse` on data the sparse rows cannot hold.
public struct InputChoiceError: Error, CustomStringConvertible {
    /// One line naming the flag and what to do.
    public var message: String
    public var description: String { message }
}
