// Trains a 784-128-64-10 ReLU network with Adam on the MNIST that ships with ptrain, on 2 worker
// threads, evaluates it, and saves a checkpoint that `ptrain eval --checkpoint` and Python read.
import Checkpoint
import Dataset
import Kernels
import Training

let kernels = try KernelSet.best()          // avx512, avx2 or baseline, whichever this CPU runs
let mnist = try MNIST.loadEmbedded()        // 60,000 training and 10,000 test images, checksummed

var config = TrainingConfiguration()        // starts as the lecture's run: 784-100-10 sigmoid, SGD 0.1
config.hidden = [128, 64]
config.activation = .relu
config.initialization = .he
config.optimizer.kind = .adam
config.learningRate = 0.001
config.iterations = 3_000
config.workers = 2                          // any worker count ends with the same bits

let builder = RunBuilder(kernels: kernels)
let trainer = builder.trainer(config, net: builder.initialNetwork(config, for: mnist.train), train: mnist.train)
let outcome = trainer.run { report in
    if report.iteration % 1_000 == 0 { print("iteration \(report.iteration): loss \(report.loss)") }
}
let test = builder.evaluate(trainer.net, on: mnist.test)
print("trained \(outcome.iterationsDone) iterations in \(String(format: "%.2f", outcome.trainSeconds)) s with \(kernels.variant.rawValue) kernels")
print("test accuracy \(test.accuracy), params sha256 \(trainer.net.parametersSHA256)")

let checkpoint = TrainingCheckpoint(net: trainer.net, iteration: outcome.iterationsDone, configuration: config,
                                    datasetSHA256: mnist.sha256, kernels: kernels.variant.rawValue,
                                    optimizerState: trainer.optimizerState, loss: outcome.losses.last)
try checkpoint.write(to: "example.safetensors")
print("wrote example.safetensors")
