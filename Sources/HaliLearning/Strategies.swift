// Strategies that pick the subset S of cells to label next, the patch grid, and which patch holds most of S.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import HaliMath

public enum StrategyKind: String, Sendable, CaseIterable, Codable {
    case coreset
    case entropy
    case margin
    case random
}

public enum Uncertainty {
    /// Shannon entropy of each probability row (higher = less certain).
    public static func entropy(_ p: Matrix) -> [Float] {
        (0..<p.rows).map { r in
            var h: Float = 0
            for c in 0..<p.columns { let v = p[r, c]; if v > 0 { h -= v * logf(v) } }
            return h
        }
    }

    /// Negative margin between the two largest probabilities (higher = less certain).
    public static func negativeMargin(_ p: Matrix) -> [Float] {
        (0..<p.rows).map { r in
            var a: Float = -1, b: Float = -1
            for c in 0..<p.columns {
                let v = p[r, c]
                if v > a { b = a; a = v } else if v > b { b = v }
            }
            return -(a - max(b, 0))
        }
    }

    /// The `k` rows of `candidates` with the highest scores (ties → lower cell index).
    public static func top(_ k: Int, scores: [Float], candidates: [Int]) -> [Int] {
        let order = candidates.indices.sorted { a, b in
            scores[a] != scores[b] ? scores[a] > scores[b] : candidates[a] < candidates[b]
        }
        return order.prefix(k).map { candidates[$0] }
    }
}

/// A square-window tiling of each image (or slide) into patches: each image of extent W×H µm is cut into
/// round(W/side) × round(H/side) equal windows (at least 1×1), so windows are about `side` µm square.
public struct PatchGrid: Sendable {
    public struct Patch: Sendable, Equatable {
        public var image: Int
        public var minX: Double, minY: Double, maxX: Double, maxY: Double
    }
    public private(set) var patches: [Patch] = []
    /// Patch of each cell.
    public private(set) var patchOfCell: [Int] = []
    /// Cells of each patch in reading order (rows of `rowHeight` µm, then x).
    public private(set) var cellsOfPatch: [[Int]] = []

    /// - Parameters: `image`, `x`, `y` per cell (µm); `extents` per image (µm).
    public init(
        image: [Int], x: [Double], y: [Double], extents: [(width: Double, height: Double)], side: Double,
        rowHeight: Double = 12
    ) {
        var firstPatch: [Int] = []
        var grid: [(Int, Int, Double, Double)] = []
        for (i, e) in extents.enumerated() {
            let nx = max(1, Int((e.width / side).rounded())), ny = max(1, Int((e.height / side).rounded()))
            let w = e.width / Double(nx), h = e.height / Double(ny)
            firstPatch.append(patches.count)
            grid.append((nx, ny, w, h))
            for gy in 0..<ny {
                for gx in 0..<nx {
                    patches.append(
                        Patch(
                            image: i, minX: Double(gx) * w, minY: Double(gy) * h,
                            maxX: Double(gx + 1) * w, maxY: Double(gy + 1) * h))
                }
            }
        }
        cellsOfPatch = [[Int]](repeating: [], count: patches.count)
        patchOfCell = image.indices.map { c in
            let (nx, ny, w, h) = grid[image[c]]
            let gx = min(nx - 1, max(0, Int(x[c] / w))), gy = min(ny - 1, max(0, Int(y[c] / h)))
            return firstPatch[image[c]] + gy * nx + gx
        }
        for c in image.indices { cellsOfPatch[patchOfCell[c]].append(c) }
        for p in patches.indices {
            cellsOfPatch[p].sort { a, b in
                let ra = Int(y[a] / rowHeight), rb = Int(y[b] / rowHeight)
                return ra != rb ? ra < rb : (x[a] != x[b] ? x[a] < x[b] : a < b)
            }
        }
    }

    /// The patch (not `done`) holding most cells of `selection`; ties → the patch holding the earliest pick.
    public func bestPatch(holding selection: [Int], done: [Bool]) -> Int? {
        var count: [Int: Int] = [:]
        var first: [Int: Int] = [:]
        for (rank, c) in selection.enumerated() {
            let p = patchOfCell[c]
            if done[p] { continue }
            count[p, default: 0] += 1
            if first[p] == nil { first[p] = rank }
        }
        return count.keys.max { a, b in
            count[a]! != count[b]! ? count[a]! < count[b]! : first[a]! > first[b]!
        }
    }
}

/// When to retrain and when to show suggestions.
public struct OnlinePolicy: Sendable, Equatable, Codable {
    public var retrainEvery: Int
    public var minLabels: Int
    public init(retrainEvery: Int = 5, minLabels: Int = 20) { self.retrainEvery = retrainEvery; self.minLabels = minLabels }

    /// True when a model should be (re)fitted now, given the label count and the count at the last fit.
    public func shouldRetrain(labelCount: Int, lastFitAt: Int?) -> Bool {
        guard labelCount >= minLabels else { return false }
        guard let last = lastFitAt else { return true }
        return labelCount - last >= retrainEvery
    }

    public func showsSuggestions(labelCount: Int) -> Bool { labelCount >= minLabels }
}
