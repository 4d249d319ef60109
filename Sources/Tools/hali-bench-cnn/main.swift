// hali-bench-cnn [WEIGHTS.safetensors] [--cells N]
// Feature-extraction throughput of the nucleus backbone on this machine, the GFLOP/s it achieves, and plain
// cblas_sgemm GFLOP/s measured in the same run (medians of 3 runs each).

import Foundation
import HaliInference
import HaliMath
import HaliNet
import HaliTraining

func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }

var args = Array(CommandLine.arguments.dropFirst())
var cells = 8192
if let i = args.firstIndex(of: "--cells"), i + 1 < args.count { cells = Int(args[i + 1]) ?? cells; args.removeSubrange(i...(i + 1)) }
let cores = ProcessInfo.processInfo.activeProcessorCount
BLAS.configure(threads: cores)

let net: FoldedResNet, meta: BackboneMetadata
if let path = args.first {
    do {
        let (n, m) = try WeightsFile.load(path: path)
        net = n.folded(); meta = m
    } catch {
        FileHandle.standardError.write("hali-bench-cnn: \(error)\nusage: hali-bench-cnn [WEIGHTS.safetensors] [--cells N]\n".data(using: .utf8)!)
        exit(2)
    }
    print("weights: \(path)")
} else {
    net = ResNet(config: .compact(), seed: 1).folded(); meta = BackboneMetadata()
    print("weights: random (compact layout)")
}
let side = meta.patchPixels
var rng = SeededRandom(seed: 3)
let pixels = (0..<(cells * side * side * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
let macs = net.config.multiplyAdds(height: side, width: side)
print("\(net.config.description)")
print(
    String(
        format: "%d×%d patches, %.2f M multiply-adds (%.1f MFLOP) per cell, %d cells per run, %d cores",
        side, side, Double(macs) / 1e6, 2 * Double(macs) / 1e6, cells, cores))

// Plain sgemm reference: 1024³, all cores.
func sgemmGFLOPs(_ n: Int, reps: Int) -> Double {
    let a = [Float](repeating: 0.5, count: n * n), b = a
    var c = [Float](repeating: 0, count: n * n)
    var times: [Double] = []
    for _ in 0..<3 {
        let t0 = Date()
        for _ in 0..<reps {
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        BLAS.sgemm(m: n, n: n, k: n, a: pa.baseAddress!, lda: n, b: pb.baseAddress!, ldb: n, c: pc.baseAddress!, ldc: n)
                    }
                }
            }
        }
        times.append(Date().timeIntervalSince(t0) / Double(reps))
    }
    return 2 * Double(n * n * n) / median(times) / 1e9
}
BLAS.configure(threads: cores)
let peak = sgemmGFLOPs(1024, reps: 10)
print(String(format: "plain cblas_sgemm 1024×1024×1024 on %d threads: %.1f GFLOP/s", cores, peak))

// Concurrent workers (single-threaded OpenBLAS each) must give the same features as one worker.
do {
    let e = Embedder(net: net, metadata: meta)
    let n = min(cells, 1024)
    let a = e.features(pixels: Array(pixels.prefix(n * side * side * 3)), count: n, height: side, width: side, threads: 1)
    let b = e.features(pixels: Array(pixels.prefix(n * side * side * 3)), count: n, height: side, width: side, threads: cores)
    let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    print(String(format: "max |features(1 worker) − features(%d workers)| = %.2e", cores, diff))
}

let defaultBatch = Embedder(net: net, metadata: meta).batchSize
var modes = [("1 worker, OpenBLAS \(cores) threads, batch \(defaultBatch)", 1, defaultBatch)]
for batch in [2, 4, 8, 16, 32, 128] { modes.append(("\(cores) workers, 1 OpenBLAS thread each, batch \(batch)", cores, batch)) }
for (label, threads, batch) in modes {
    var e = Embedder(net: net, metadata: meta)
    e.batchSize = batch
    BLAS.configure(threads: cores)
    var rates: [Double] = []
    for _ in 0..<3 {
        let t0 = Date()
        let f = e.features(pixels: pixels, count: cells, height: side, width: side, threads: threads)
        precondition(f.count == cells * net.config.featureDimension)
        rates.append(Double(cells) / Date().timeIntervalSince(t0))
    }
    let r = median(rates)
    let gf = r * 2 * Double(macs) / 1e9
    print(
        String(
            format: "%-48@ %7.0f cells/s  %6.1f GFLOP/s  = %4.0f%% of sgemm  (10^6 cells: %.1f min)",
            label as NSString, r, gf, 100 * gf / peak, 1e6 / r / 60))
}
