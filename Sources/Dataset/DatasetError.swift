/// A problem with a data file that the user can fix: the message names the file, says what is
/// wrong and what to do. Each renders as one line.
public struct DatasetError: Error, CustomStringConvertible, Equatable {
    /// The file (or folder) concerned.
    public var path: String
    /// What is wrong, as one sentence fragment.
    public var problem: String
    /// What the user can do about it.
    public var remedy: String

    /// An error about the file at `path`: what is wrong with it and what to do.
    public init(path: String, problem: String, remedy: String = "re-download the dataset or pass --data DIR with the four MNIST-format IDX files") {
        self.path = path
        self.problem = problem
        self.remedy = remedy
    }

    /// "PATH: problem; remedy", the one line the CLI prints.
    public var description: String { "\(path): \(problem); \(remedy)" }
}
