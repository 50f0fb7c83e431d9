import Foundation
import Kernels

/// The update seam: how a run of parameters moves, given its gradient summed over the batch.
///
/// The engine calls it once per work item of the parameter phase, on that item's slice only (the
/// rows of one W, or the biases), right after the reduction summed the slice's gradient — and the
/// sparse first layer calls it per W1 row, straight from the accumulator that summed the row. So
/// a rule sees any partition of the parameters and must treat each element on its own: then the
/// result does not depend on how the work was split (docs/reproducibility.md).
///
/// A conforming type holds only plain values (its hyperparameters and schedule): nothing it reads
/// on the hot path is reference-counted, so workers calling it never contend for a shared count.
public protocol ParameterUpdate: Sendable {
    /// Floats of state per parameter: 0 for SGD, 1 for momentum (the velocity), 2 for Adam (m, v).
    var stateSlots: Int { get }
    /// What iteration `k` (0-based, counted from the start of the run, before any resume) of a
    /// run of `total` iterations uses: its learning rate and, for Adam, the bias corrections. A pure
    /// function of (k, total), computed once per iteration.
    func step(iteration k: Int, total: Int) -> UpdateStep
    /// Updates `count` parameters from `parameters`, whose gradients start at `gradient`; both point
    /// at flat position `offset` of the parameter buffer, where the state slots hold this rule's
    /// state for them.
    func apply(_ kernels: KernelFunctions, _ parameters: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
               count: Int, offset: Int, step: UpdateStep, state: StateSlots)
}

/// The per-iteration constants of an update (`ParameterUpdate.step`).
public struct UpdateStep: Sendable, Equatable {
    /// η of this iteration (the schedule's).
    public var rate: Float
    /// Adam's 1 − β1^t and 1 − β2^t for step t = k + 1, computed in Float64 from t and rounded
    /// once; 1 for the other rules.
    public var correction1: Float = 1
    /// Adam's 1 − β2^t (see `correction1`).
    public var correction2: Float = 1
}

/// A rule's state: `slots` arrays of one float per parameter, back to back (slot s of parameter p
/// at `base[s·stride + p]`). Plain values, read on the hot path without reference counting.
public struct StateSlots: @unchecked Sendable {
    /// Slot 0's first float; nil when the rule keeps no state.
    public let base: UnsafeMutablePointer<Float>?
    /// Floats per slot: the parameter count.
    public let stride: Int
    /// Slot `s`'s float for the parameter at flat `offset`.
    @inline(__always) public func slot(_ s: Int, at offset: Int) -> UnsafeMutablePointer<Float> { base! + s * stride + offset }
}

/// The optimizer's state for a network: every slot zero at the start (no momentum, no moments),
/// carried by checkpoints. Allocated beside the parameters, once per run.
public final class OptimizerState: @unchecked Sendable {
    /// The rule's `stateSlots`.
    public let slots: Int
    /// The network's parameter count.
    public let parameterCount: Int
    /// `slots × parameterCount` floats, slot after slot.
    public let buffer: FloatBuffer

    /// Zero state: a new run's.
    public init(slots: Int, parameterCount: Int) {
        self.slots = slots
        self.parameterCount = parameterCount
        buffer = FloatBuffer(count: slots * parameterCount)
    }

    /// The state as the update kernels read it.
    public var view: StateSlots { StateSlots(base: slots > 0 ? buffer.pointer : nil, stride: parameterCount) }
}

/// `--optimizer`: the update rules.
public enum OptimizerKind: String, CaseIterable, Codable, Sendable {
    /// θ ← θ − η·(g + λ·θ): the lecture's SGD (λ = 0).
    case sgd
    /// Heavy-ball momentum.
    case momentum
    /// Momentum with Nesterov's correction.
    case nesterov
    /// Adam, L2 weight decay added to the gradient.
    case adam
    /// Adam with decoupled weight decay.
    case adamw

    /// The names of its state slots (checkpoint tensor prefixes).
    public var stateNames: [String] {
        switch self {
        case .sgd: return []
        case .momentum, .nesterov: return ["velocity"]
        case .adam, .adamw: return ["m", "v"]
        }
    }
}

/// Everything that determines an optimizer's updates besides the learning rate and its schedule.
/// The defaults are those of PyTorch and optax, which users compare against.
public struct OptimizerSettings: Equatable, Sendable {
    /// `--optimizer`: the lecture's plain SGD by default.
    public var kind: OptimizerKind = .sgd
    /// μ of momentum and Nesterov: 0.9, the common choice (an average over about 10 steps).
    public var momentum: Float = 0.9
    /// Adam's β1 (0.9) and β2 (0.999), Kingma and Ba's defaults.
    public var beta1: Float = 0.9
    /// Adam's β2 (see `beta1`).
    public var beta2: Float = 0.999
    /// Adam's ε, 1e-8 (Kingma and Ba): only guards the division where v is about 0.
    public var epsilon: Float = 1e-8
    /// λ: 0 (none). L2 (added to the gradient) for sgd, momentum, nesterov and adam; decoupled
    /// (added to the update) for adamw.
    public var weightDecay: Float = 0

    /// The defaults above.
    public init() {}
}

/// `--schedule`: how the learning rate moves over a run.
public enum ScheduleKind: String, CaseIterable, Codable, Sendable {
    case constant, step, cosine
}

/// The learning rate of iteration k (0-based) of a run of T iterations with base rate η:
///
///     warmup (k < W):  η·(k + 1)/W
///     constant:        η
///     step:            η·F^⌊(k − W)/N⌋            (N = decay every, F = decay factor)
///     cosine:          η·(1 + cos(π·(k − W)/(T − W)))/2
///
/// computed in Float64 from the Float32 η and F and rounded once; constant without warmup is η's
/// bits exactly. A pure function of k and the flags, so a resumed run gets the same rates.
public struct LearningRateSchedule: Equatable, Sendable {
    /// `--schedule`: the lecture's constant rate by default.
    public var kind: ScheduleKind = .constant
    /// W: iterations of linear warmup (0: none).
    public var warmup = 0
    /// N and F of the step schedule.
    public var decayEvery = 0
    /// F of the step schedule (see `decayEvery`).
    public var decayFactor: Float = 0.1

    /// The defaults above.
    public init() {}

    /// η_k by the formulas above.
    public func rate(_ k: Int, base: Float, total: Int) -> Float {
        if k < warmup { return Float(Double(base) * Double(k + 1) / Double(warmup)) }
        switch kind {
        case .constant:
            return base
        case .step:
            return Float(Double(base) * pow(Double(decayFactor), Double((k - warmup) / max(decayEvery, 1))))
        case .cosine:
            let span = Double(max(total - warmup, 1))
            return Float(Double(base) * (1 + cos(Double.pi * Double(k - warmup) / span)) / 2)
        }
    }
}

/// The lecture's SGD (with optional L2 decay). With λ = 0 it is `Activations.sgdStep`, θ − η·g,
/// the update every earlier ptrain run used, so their bits are kept.
public struct SGD: ParameterUpdate, Equatable {
    /// η, the base rate (`--learning-rate`).
    public var learningRate: Float
    /// λ (`--weight-decay`).
    public var weightDecay: Float = 0
    /// How η moves over the run.
    public var schedule = LearningRateSchedule()

    /// A rule with these settings.
    public init(learningRate: Float, weightDecay: Float = 0, schedule: LearningRateSchedule = LearningRateSchedule()) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.schedule = schedule
    }

    public var stateSlots: Int { 0 }

    public func step(iteration k: Int, total: Int) -> UpdateStep {
        UpdateStep(rate: schedule.rate(k, base: learningRate, total: total))
    }

    @inline(__always)
    public func apply(_ kernels: KernelFunctions, _ parameters: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                      count: Int, offset: Int, step: UpdateStep, state: StateSlots) {
        if weightDecay == 0 {
            kernels.sgdStep(parameters, gradient, count, step.rate)
        } else {
            kernels.sgdDecayStep(parameters, gradient, count, step.rate, weightDecay)
        }
    }
}

/// Momentum, and with `nesterov` Nesterov's variant (`UpdateKernels.momentum`); state: the velocity.
public struct Momentum: ParameterUpdate, Equatable {
    /// η, the base rate (`--learning-rate`).
    public var learningRate: Float
    /// μ.
    public var momentum: Float
    /// Nesterov's look-ahead form.
    public var nesterov: Bool
    /// λ (`--weight-decay`).
    public var weightDecay: Float
    /// How η moves over the run.
    public var schedule: LearningRateSchedule

    /// A rule with these settings.
    public init(learningRate: Float, momentum: Float, nesterov: Bool, weightDecay: Float, schedule: LearningRateSchedule) {
        (self.learningRate, self.momentum, self.nesterov, self.weightDecay, self.schedule) = (learningRate, momentum, nesterov, weightDecay, schedule)
    }

    public var stateSlots: Int { 1 }

    public func step(iteration k: Int, total: Int) -> UpdateStep {
        UpdateStep(rate: schedule.rate(k, base: learningRate, total: total))
    }

    @inline(__always)
    public func apply(_ kernels: KernelFunctions, _ parameters: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                      count: Int, offset: Int, step: UpdateStep, state: StateSlots) {
        kernels.momentumStep(parameters, gradient, state.slot(0, at: offset), count, step.rate, momentum, weightDecay, nesterov)
    }
}

/// Adam, and with `decoupled` AdamW (`UpdateKernels.adam`); state: the moments m and v.
///
/// The bias corrections of step t = k + 1 are 1 − β1^t and 1 − β2^t, each computed as
/// `1 − pow(β, t)` in Float64 (β the Float32 value, widened) from t alone and rounded once to
/// Float32 — never a running product
/// carried from step to step, so a run resumed from a checkpoint computes exactly the
/// uninterrupted run's values.
public struct Adam: ParameterUpdate, Equatable {
    /// η, the base rate (`--learning-rate`).
    public var learningRate: Float
    /// β1.
    public var beta1: Float
    /// β2.
    public var beta2: Float
    /// ε.
    public var epsilon: Float
    /// λ (`--weight-decay`).
    public var weightDecay: Float
    /// AdamW: decay added to the update rather than to the gradient.
    public var decoupled: Bool
    /// How η moves over the run.
    public var schedule: LearningRateSchedule

    /// A rule with these settings.
    public init(learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool,
                schedule: LearningRateSchedule) {
        (self.learningRate, self.beta1, self.beta2, self.epsilon) = (learningRate, beta1, beta2, epsilon)
        (self.weightDecay, self.decoupled, self.schedule) = (weightDecay, decoupled, schedule)
    }

    public var stateSlots: Int { 2 }

    public func step(iteration k: Int, total: Int) -> UpdateStep {
        let t = Double(k + 1)
        return UpdateStep(rate: schedule.rate(k, base: learningRate, total: total),
                          correction1: Float(1 - pow(Double(beta1), t)), correction2: Float(1 - pow(Double(beta2), t)))
    }

    @inline(__always)
    public func apply(_ kernels: KernelFunctions, _ parameters: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                      count: Int, offset: Int, step: UpdateStep, state: StateSlots) {
        kernels.adamStep(parameters, gradient, state.slot(0, at: offset), state.slot(1, at: offset), count,
                         AdamConstants(rate: step.rate, beta1: beta1, beta2: beta2, epsilon: epsilon, correction1: step.correction1,
                                       correction2: step.correction2, decay: weightDecay, decoupled: decoupled))
    }
}

extension OptimizerSettings {
    /// The rule these settings describe, with base rate `learningRate` and `schedule`.
    public func rule(learningRate: Float, schedule: LearningRateSchedule) -> any ParameterUpdate {
        switch kind {
        case .sgd:
            return SGD(learningRate: learningRate, weightDecay: weightDecay, schedule: schedule)
        case .momentum, .nesterov:
            return Momentum(learningRate: learningRate, momentum: momentum, nesterov: kind == .nesterov, weightDecay: weightDecay,
                            schedule: schedule)
        case .adam, .adamw:
            return Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay,
                        decoupled: kind == .adamw, schedule: schedule)
        }
    }
}
