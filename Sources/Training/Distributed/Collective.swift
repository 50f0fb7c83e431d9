import Model

/// The communication a run across processes (ranks) needs, and nothing more: every rank calls each
/// operation in the same order (they are collective), from one thread at a time.
///
/// ptrain's MPI build implements it over Open MPI (`MPICollective`); the tests run several ranks as
/// threads of one process (`TestSupport.ThreadCollective`), so the distributed loop is proven in
/// the default build too.
public protocol Collective: AnyObject, Sendable {
    /// This process's rank, 0..<size. Rank 0 writes the files of a run and prints its report.
    var rank: Int { get }
    /// How many ranks train together.
    var size: Int { get }
    /// In place: rank r's `counts[r]` floats at `buffer + displacements[r]` reach every rank's
    /// buffer at the same place (MPI_Allgatherv with MPI_IN_PLACE). The ranges do not overlap.
    func allgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int], displacements: [Int])
    /// The largest of every rank's `value` (MPI_Allreduce with MPI_MAX): how ranks agree to stop.
    func maximum(_ value: Int) -> Int
}

/// Which share of every iteration one rank of R computes, as a pure function of the network, the
/// batch size and R (every rank computes the same plan).
///
/// - Rows: rank r runs the row phase (forward and backward) of batch rows ⌊B·r/R⌋ ..< ⌊B·(r+1)/R⌋.
/// - Parameters: the parameter phase's items (`ParameterSlice.blocks`, the single-process engine's
///   own) in order, cut into R consecutive runs of about equal work (rows · outputs multiply-adds
///   per batch row); rank r reduces and updates run r, and its optimizer state lives there.
///
/// Why this split (docs/reproducibility.md, "Across processes"): every gradient element stays one
/// sum over all B rows in row order, formed by one rank inside one GEMM, exactly as one process
/// forms it; ranks exchange only the per-row quantities those sums read (z_l and d_l of their
/// rows: batch × widths) and then the parameters they updated. So the bits are those of one
/// process for every rank count, and the bytes sent do not grow with the parameter count.
public struct RankPlan: Equatable, Sendable {
    /// The number of ranks.
    public let ranks: Int
    /// Rows per batch, over all ranks.
    public let batchSize: Int
    /// Per rank: the batch rows whose row phase it runs.
    public let rows: [Range<Int>]
    /// Per rank: the parameter items it reduces and updates.
    public let slices: [[ParameterSlice]]
    /// Per rank: the flat parameter ranges its slices cover, in slice order.
    public let parameterRanges: [[Range<Int>]]
    /// Floats one batch row contributes to the row exchange: its loss, z_l of each hidden layer
    /// and d_l of every layer.
    public let floatsPerRow: Int

    /// The split of `spec`'s batches and parameters over `ranks`.
    public init(spec: NetworkSpec, batchSize: Int, ranks: Int) {
        precondition(ranks >= 1 && ranks <= batchSize, "every rank needs at least one row of the batch")
        self.ranks = ranks
        self.batchSize = batchSize
        rows = (0..<ranks).map { batchSize * $0 / ranks..<batchSize * ($0 + 1) / ranks }
        let layout = ParameterLayout(spec)
        let items = ParameterSlice.blocks(spec)
        func work(_ s: ParameterSlice) -> Int {
            (s.rows.isEmpty ? 0 : s.rows.count * layout.layers[s.layer].outputs) + (s.biases ? layout.layers.map(\.outputs).reduce(0, +) : 0)
        }
        // Item k goes to the rank whose share of the total work holds the middle of the item.
        let total = items.map(work).reduce(0, +)
        var shares = [[ParameterSlice]](repeating: [], count: ranks)
        var before = 0
        for item in items {
            let middle = 2 * before + work(item)  // twice the midpoint, in integers
            shares[min(ranks - 1, middle * ranks / (2 * max(total, 1)))].append(item)
            before += work(item)
        }
        slices = shares
        parameterRanges = shares.map { $0.flatMap { RankPlan.ranges(of: $0, in: layout) } }
        floatsPerRow = 1 + spec.hidden.reduce(0, +) + spec.widths.dropFirst().reduce(0, +)
    }

    /// The flat ranges of the parameter vector that `slice` covers.
    static func ranges(of slice: ParameterSlice, in layout: ParameterLayout) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        if !slice.rows.isEmpty {
            let layer = layout.layers[slice.layer]
            let start = layer.weights.lowerBound + slice.rows.lowerBound * layer.outputs
            ranges.append(start..<start + slice.rows.count * layer.outputs)
        }
        if slice.biases { ranges += layout.layers.map(\.bias) }
        return ranges
    }

    /// Parameters (or floats of one optimizer-state slot) each rank contributes to the parameter exchange.
    public var parameterCounts: [Int] { parameterRanges.map { $0.map(\.count).reduce(0, +) } }

    /// Floats each rank contributes to the row exchange.
    public var rowCounts: [Int] { rows.map { $0.count * floatsPerRow } }

    /// Bytes rank r sends per iteration in the two exchanges: its rows and its parameters (each
    /// reaches every other rank; how the MPI library routes it is its own affair).
    public func bytesSent(rank r: Int) -> Int { 4 * (rowCounts[r] + parameterCounts[r]) }

    /// Exclusive prefix sums: where each rank's contribution starts.
    static func displacements(_ counts: [Int]) -> [Int] {
        var starts: [Int] = []
        var start = 0
        for count in counts {
            starts.append(start)
            start += count
        }
        return starts
    }
}
