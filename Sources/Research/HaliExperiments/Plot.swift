// Learning curves drawn on a HaliImaging Canvas (HaliPNG writes it).

import Foundation
public import HaliImaging

public enum CurvePlot {
    public static let palette: [(UInt8, UInt8, UInt8)] = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14)]

    /// Mean curves with ±1 sd bands; y from `yMin` to 1; legend and axis numbers drawn with the bitmap font.
    public static func draw(
        title: String, xs: [Int], series: [(name: String, mean: [Double], sd: [Double])],
        yMin: Double = 0.4, width: Int = 900, height: Int = 560
    ) -> Canvas {
        var c = Canvas(width: width, height: height)
        let left = 80, right = width - 20, top = 50, bottom = height - 60
        let xMax = Double(xs.last ?? 1)
        func px(_ x: Double) -> Double { Double(left) + x / max(xMax, 1) * Double(right - left) }
        func py(_ y: Double) -> Double { Double(bottom) - (min(max(y, yMin), 1) - yMin) / (1 - yMin) * Double(bottom - top) }
        // Grid and ticks.
        var yt = yMin
        while yt <= 1.0001 {
            c.line(Double(left), py(yt), Double(right), py(yt), (225, 225, 225))
            c.text(String(format: "%.1f", yt), x: 20, y: Int(py(yt)) - 7, (60, 60, 60))
            yt += 0.1
        }
        let step = xMax > 100 ? 50 : 10
        for xt in stride(from: 0, through: Int(xMax), by: step) {
            c.line(px(Double(xt)), Double(top), px(Double(xt)), Double(bottom), (235, 235, 235))
            c.text("\(xt)", x: Int(px(Double(xt))) - 10, y: bottom + 10, (60, 60, 60))
        }
        c.line(Double(left), Double(bottom), Double(right), Double(bottom), (0, 0, 0), thickness: 2)
        c.line(Double(left), Double(top), Double(left), Double(bottom), (0, 0, 0), thickness: 2)
        c.text("N LABELS", x: (left + right) / 2 - 48, y: bottom + 34, (0, 0, 0))
        c.text(title, x: left, y: 14, (0, 0, 0))
        for (si, s) in series.enumerated() {
            let col = palette[si % palette.count]
            for i in 1..<xs.count {
                let x0 = Int(px(Double(xs[i - 1]))), x1 = Int(px(Double(xs[i])))
                for x in x0..<max(x1, x0 + 1) {
                    let t = Double(x - x0) / Double(max(x1 - x0, 1))
                    let m = s.mean[i - 1] + (s.mean[i] - s.mean[i - 1]) * t
                    let d = s.sd[i - 1] + (s.sd[i] - s.sd[i - 1]) * t
                    let ya = Int(py(m + d)), yb = Int(py(m - d))
                    for y in ya...max(ya, yb) { c.blend(x, y, col, alpha: 0.08) }
                }
            }
            for i in 1..<xs.count {
                c.line(px(Double(xs[i - 1])), py(s.mean[i - 1]), px(Double(xs[i])), py(s.mean[i]), col, thickness: 3)
            }
            let ly = bottom - 30 - (series.count - 1 - si) * 22
            c.fillRect(right - 250, ly, right - 234, ly + 12, col)
            c.text(s.name, x: right - 226, y: ly, (0, 0, 0))
        }
        return c
    }
}
