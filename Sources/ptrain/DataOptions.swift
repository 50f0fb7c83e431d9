import ArgumentParser
import Dataset

/// `--data DIR`, shared by the commands that read a dataset.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Folder with the four MNIST-format IDX files (train-images-idx3-ubyte, ..., optionally .gz). Default: the embedded MNIST.",
        valueName: "dir"))
    var data: String?

    func load() throws -> MNIST {
        let dataset = try data.map { try MNIST.load(directory: $0) } ?? MNIST.loadEmbedded()
        guard dataset.train.pixelsPerImage > 0 else {
            throw DatasetError(path: dataset.source, problem: "images have no pixels")
        }
        return dataset
    }

    var sourceDescription: String { data ?? "embedded MNIST" }
}
