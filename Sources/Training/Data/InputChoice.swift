import Dataset

/// How layer 1 reads the training pixels. Both encodings give the same bits (the sparse kernels
/// run the dense GEMM's multiply-add chains minus their zero terms, `KernelCore.SparseKernels`),
/// so this is a speed setting, like `--workers`, and not part of a checkpoint's identity.
public enum InputChoice: String, CaseIterable, Sendable, Codable {
    /// Sparse when the training images' density is at most `sparseDensityLimit`, else dense.
    case auto
    /// Normalize every pixel into a dense batch and multiply with the GEMM.
    case dense
    /// Multiply only the non-zero pixels (compressed sparse rows built at start-up).
    case sparse

    /// The density up to which `auto` reads sparse. Measured on this project's machine kind
    /// (docs/kernels.md): MNIST (density 0.19) trains about 2x faster sparse, Fashion-MNIST (0.50)
    /// about 10% faster dense; 0.4 stays below that break-even with room for noise.
    public static let sparseDensityLimit = 0.4

    /// The encoding a run of `images` uses; nil with a reason when `.sparse` cannot be honoured.
    public func resolve(for images: LabeledImages) -> Result<InputEncoding, InputChoiceError> {
        switch self {
        case .dense: return .success(.dense)
        case .sparse:
            guard SparseImages.supports(images) else {
                return .failure(InputChoiceError(message: "images of \(images.pixelsPerImage) pixels are too large for the sparse input (at most 65535); use --input dense"))
            }
            return .success(.sparse)
        case .auto:
            guard SparseImages.supports(images) else { return .success(.dense) }
            return .success(SparseImages.density(images) <= Self.sparseDensityLimit ? .sparse : .dense)
        }
    }
}

/// The encoding a run actually uses.
public enum InputEncoding: String, Sendable, Codable {
    case dense
    case sparse
}

public struct InputChoiceError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
