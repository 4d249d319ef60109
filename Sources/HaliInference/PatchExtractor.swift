// The patch a backbone sees around a nucleus: the same resampling at ingest, in the daemon and in training, so that
// features computed anywhere agree.

public import HaliImaging

public enum PatchExtractor {
    /// Samples a `side`×`side` RGB patch centred on (cx, cy) with output pixel size `scale` source pixels
    /// (scale = target µm/px ÷ source µm/px). Each output pixel averages ⌈scale⌉² bilinear samples over its
    /// footprint (anti-aliasing when shrinking); outside the image the edge is replicated.
    public static func patch(_ img: RGBImage, cx: Double, cy: Double, side: Int, scale: Double, into out: inout [UInt8]) {
        let sub = max(1, Int(scale.rounded(.up)))
        let W = img.width, H = img.height
        img.pixels.withUnsafeBufferPointer { p in
            for oy in 0..<side {
                for ox in 0..<side {
                    var acc = (0.0, 0.0, 0.0)
                    for sy in 0..<sub {
                        for sx in 0..<sub {
                            // pixel-centre convention: output pixel centre at offset (o + 0.5 − side/2)·scale
                            let fx = cx + (Double(ox) + (Double(sx) + 0.5) / Double(sub) - Double(side) / 2) * scale
                            let fy = cy + (Double(oy) + (Double(sy) + 0.5) / Double(sub) - Double(side) / 2) * scale
                            let x0 = Int(fx.rounded(.down)), y0 = Int(fy.rounded(.down))
                            let ax = fx - Double(x0), ay = fy - Double(y0)
                            let xa = min(max(x0, 0), W - 1), xb = min(max(x0 + 1, 0), W - 1)
                            let ya = min(max(y0, 0), H - 1), yb = min(max(y0 + 1, 0), H - 1)
                            for c in 0..<3 {
                                let v00 = Double(p[(ya * W + xa) * 3 + c]), v01 = Double(p[(ya * W + xb) * 3 + c])
                                let v10 = Double(p[(yb * W + xa) * 3 + c]), v11 = Double(p[(yb * W + xb) * 3 + c])
                                let v = (v00 * (1 - ax) + v01 * ax) * (1 - ay) + (v10 * (1 - ax) + v11 * ax) * ay
                                switch c {
                                case 0: acc.0 += v;
                                case 1: acc.1 += v;
                                default: acc.2 += v
                                }
                            }
                        }
                    }
                    let n = Double(sub * sub)
                    out.append(UInt8(min(255, max(0, (acc.0 / n).rounded()))))
                    out.append(UInt8(min(255, max(0, (acc.1 / n).rounded()))))
                    out.append(UInt8(min(255, max(0, (acc.2 / n).rounded()))))
                }
            }
        }
    }
}
