/// Images with their class labels, pixels kept compact as bytes (0...255) until a worker needs
/// them: 60,000 MNIST images take 47 MB as bytes and would take 188 MB as Float32.
public struct LabeledImages: Sendable {
    /// Number of classes; labels are in `0..<classCount`.
    public static let classCount = 10

    /// The number of images.
    public let count: Int
    /// Pixel rows per image (28 for MNIST).
    public let rows: Int
    /// Pixel columns per image (28 for MNIST).
    public let columns: Int
    /// `count * rows * columns` bytes, image-major.
    public let pixels: [UInt8]
    /// `count` labels in `0..<classCount`.
    public let labels: [UInt8]

    /// The input width of a network trained on these images.
    public var pixelsPerImage: Int { rows * columns }

    /// Images from memory: `pixels` holds `count·rows·columns` bytes, image after image, row-major; `labels` one class (0-9) per image.
    public init(count: Int, rows: Int, columns: Int, pixels: [UInt8], labels: [UInt8]) {
        precondition(pixels.count == count * rows * columns && labels.count == count)
        self.count = count
        self.rows = rows
        self.columns = columns
        self.pixels = pixels
        self.labels = labels
    }

    /// Pairs an image file with a label file, checking that counts agree and labels are 0-9.
    public init(images: IDXFile, imagesPath: String, labels: IDXFile, labelsPath: String) throws {
        let n = images.dimensions[0]
        guard labels.dimensions[0] == n else {
            throw DatasetError(path: labelsPath, problem: "holds \(labels.dimensions[0]) labels but \(imagesPath) holds \(n) images",
                               remedy: "use an image file and a label file from the same dataset split")
        }
        if let bad = labels.bytes.firstIndex(where: { Int($0) >= LabeledImages.classCount }) {
            throw DatasetError(path: labelsPath, problem: "label \(labels.bytes[bad]) at index \(bad) is outside 0-9",
                               remedy: "ptrain trains 10-class datasets; check that this is an MNIST-format label file")
        }
        self.init(count: n, rows: images.dimensions[1], columns: images.dimensions[2],
                  pixels: images.bytes, labels: labels.bytes)
    }
}

/// Converts `count` pixels to Float32 as pixel / 255, the lecture's `normalize=True` (a division,
/// as numpy does it; multiplying by 1/255 would round 126 of the 256 values differently).
/// The plain reference twin of `Activations.normalizePixels`, which the training loop uses.
@inlinable
public func normalizePixels(_ source: UnsafePointer<UInt8>, count: Int, into destination: UnsafeMutablePointer<Float>) {
    for i in 0..<count { destination[i] = Float(source[i]) / 255 }
}

extension LabeledImages {
    /// Writes image `index`, normalized, to `destination` (`pixelsPerImage` floats).
    @inlinable
    public func copyNormalized(_ index: Int, to destination: UnsafeMutablePointer<Float>) {
        let n = pixelsPerImage
        pixels.withUnsafeBufferPointer { normalizePixels($0.baseAddress! + index * n, count: n, into: destination) }
    }
}
