import ArgumentParser
import Checkpoint
import Foundation
import Kernels
import Training

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Test accuracy and loss of a saved checkpoint.")

    @Option(help: ArgumentHelp("The checkpoint to evaluate.", valueName: "path"))
    var checkpoint: String

    @OptionGroup var dataOptions: DataOptions

    @Flag(help: "Print exactly one JSON object on stdout.")
    var json = false

    func run() throws {
        let kernels = try KernelSet.best()
        let saved = try TrainingCheckpoint.read(checkpoint)
        let dataset = try dataOptions.load()
        guard dataset.test.pixelsPerImage == saved.net.spec.input else {
            throw RunError("\(checkpoint): the model takes \(saved.net.spec.input) inputs, the images of \(dataOptions.sourceDescription) have \(dataset.test.pixelsPerImage) pixels")
        }
        if dataset.sha256 != saved.datasetSHA256 && !json {
            warn("note: \(checkpoint) was trained on another dataset (sha256 \(saved.datasetSHA256.prefix(12))...)")
        }
        let e = RunBuilder(kernels: kernels).evaluate(saved.net, on: dataset.test)
        if json {
            let object: [String: Any] = ["test_accuracy": e.accuracy, "test_loss": e.loss, "iteration": saved.iteration,
                                         "params_sha256": saved.net.parametersSHA256, "dataset": dataset.source,
                                         "layers": saved.net.spec.widths, "activation": saved.net.spec.activation.rawValue,
                                         "init": saved.net.spec.initialization.rawValue,
                                         "trained_on_this_dataset": dataset.sha256 == saved.datasetSHA256]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print("\(checkpoint): \(saved.net.spec.description), iteration \(saved.iteration), test accuracy \(format(e.accuracy, 4)), test loss \(format(e.loss, 4)) on \(dataset.test.count) images")
        }
    }
}
