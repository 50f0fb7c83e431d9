import Foundation

/// A minimal SVG line chart: axes with "nice" ticks, labels, a title and a legend; no dependencies,
/// output checked with `rsvg-convert` in the tests. Used for the loss curve (`--plot`) and the
/// scaling benchmark.
public struct LineChart {
    /// One line of the chart.
    public struct Series {
        /// The legend's label.
        public var name: String
        /// The points, in the order they are joined.
        public var points: [(x: Double, y: Double)]
        /// An SVG colour ("#1f77b4").
        public var color: String
        /// Whether each point gets a dot.
        public var markers: Bool

        /// A series of `points` drawn in `color`.
        public init(name: String, points: [(x: Double, y: Double)], color: String, markers: Bool = false) {
            self.name = name
            self.points = points
            self.color = color
            self.markers = markers
        }
    }

    /// The chart's title.
    public var title: String
    /// The x axis's label.
    public var xLabel: String
    /// The y axis's label.
    public var yLabel: String
    /// The lines, drawn in order.
    public var series: [Series]
    /// Forces the y axis to start at zero (throughputs, efficiencies).
    public var yFromZero = false

    /// A chart of `series`; `yFromZero` starts the y axis at 0 instead of the data's minimum.
    public init(title: String, xLabel: String, yLabel: String, series: [Series], yFromZero: Bool = false) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.yFromZero = yFromZero
    }

    /// A standalone SVG document of `width` x `height` pixels.
    public func svg(width: Double = 720, height: Double = 440) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body(x: 0, y: 0, width: width, height: height) + "</svg>\n"
    }

    /// Several charts side by side in one SVG document.
    public static func svg(_ charts: [LineChart], panelWidth: Double = 560, height: Double = 420) -> String {
        let width = panelWidth * Double(charts.count)
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for (i, chart) in charts.enumerated() { out += chart.body(x: Double(i) * panelWidth, y: 0, width: panelWidth, height: height) }
        return out + "</svg>\n"
    }

    /// The chart's elements inside the box (x, y, width, height).
    func body(x ox: Double, y oy: Double, width: Double, height: Double) -> String {
        let left = ox + 72, right = ox + width - 20, top = oy + 44, bottom = oy + height - 56
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard !all.isEmpty else { return "" }
        var (xMin, xMax) = (all.map(\.x).min()!, all.map(\.x).max()!)
        var (yMin, yMax) = (all.map(\.y).min()!, all.map(\.y).max()!)
        if yFromZero { yMin = min(0, yMin) }
        if xMax == xMin { xMax = xMin + 1 }
        if yMax == yMin { yMax = yMin + 1 }
        let xTicks = Self.ticks(xMin, xMax), yTicks = Self.ticks(yMin, yMax)
        (xMin, xMax) = (min(xMin, xTicks.first!), max(xMax, xTicks.last!))
        (yMin, yMax) = (min(yMin, yTicks.first!), max(yMax, yTicks.last!))
        func px(_ v: Double) -> Double { left + (v - xMin) / (xMax - xMin) * (right - left) }
        func py(_ v: Double) -> Double { bottom - (v - yMin) / (yMax - yMin) * (bottom - top) }
        var out = ""
        out += text(title, (left + right) / 2, oy + 24, size: 16, anchor: "middle", weight: "bold")
        for t in yTicks {
            out += line(left, py(t), right, py(t), color: "#e5e5e5")
            out += text(Self.label(t), left - 6, py(t) + 4, size: 11, anchor: "end")
        }
        for t in xTicks {
            out += line(px(t), bottom, px(t), bottom + 5, color: "#333")
            out += text(Self.label(t), px(t), bottom + 18, size: 11, anchor: "middle")
        }
        out += line(left, bottom, right, bottom, color: "#333") + line(left, top, left, bottom, color: "#333")
        out += text(xLabel, (left + right) / 2, oy + height - 16, size: 13, anchor: "middle")
        out += "<text x=\"\(f(ox + 18))\" y=\"\(f((top + bottom) / 2))\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 \(f(ox + 18)) \(f((top + bottom) / 2)))\">\(escape(yLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            let path = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            if s.markers {
                for p in points { out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(s.color)\"/>\n" }
            }
            if series.count > 1 {
                let ly = top + 8 + Double(i) * 16
                out += line(right - 190, ly - 4, right - 170, ly - 4, color: s.color, width: 2)
                out += text(s.name, right - 165, ly, size: 11, anchor: "start")
            }
        }
        return out
    }

    /// About five round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
    public static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = floor(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 {
            out.append(t)
            t += step
        }
        if out.last! < hi { out.append(out.last! + step) }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
        return String(format: "%g", v)
    }

    func f(_ v: Double) -> String { String(format: "%.1f", v) }

    func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: String, width: Double = 1) -> String {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(color)\" stroke-width=\"\(width)\"/>\n"
    }

    func text(_ s: String, _ x: Double, _ y: Double, size: Int, anchor: String, weight: String = "normal") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\" font-weight=\"\(weight)\">\(escape(s))</text>\n"
    }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
