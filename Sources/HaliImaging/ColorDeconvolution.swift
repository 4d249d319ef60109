// Optical density and colour deconvolution (Ruifrok & Johnston 2001), following QuPath's conventions.
//
// Beer–Lambert: the optical density of channel c is OD_c = −log10(I_c / I0_c) with I0 = 255 (white
// background), the 8-bit value clamped at ≥ 1 so that OD ≤ log10(255) ≈ 2.41 and OD ≥ 0 (QuPath
// `ColorDeconvolutionHelper.makeOD`). A stain with unit OD vector s contributes amount a·s to the pixel's OD
// vector; with three stains the OD row vector is od = a·S where the rows of S are the (unit-normalised)
// stain vectors. Deconvolution is therefore a = od·S⁻¹ (one 3×3 product per pixel). When only two stains are
// given, the third row is the normalised cross product of the first two ("residual").
//
// Reference: A. C. Ruifrok, D. A. Johnston, "Quantification of histochemical staining by color
// deconvolution", Anal. Quant. Cytol. Histol. 23(4):291–299, 2001. Stain vectors: QuPath `StainVector`
// defaults (Bankhead et al., Sci. Rep. 7:16878, 2017).
//
// Cost: one table lookup per channel and 9 multiply–adds per pixel, O(N).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A set of three stain OD vectors (rows) and its inverse, ready to deconvolve.
public struct StainMatrix: Sendable, Equatable {
    public let names: [String]
    /// Rows = unit OD vectors of the stains (R, G, B components).
    public let rows: [[Double]]
    /// `inverse[i][k]`: contribution of OD channel i to stain k (stain k = Σ_i od_i · inverse[i][k]).
    public let inverse: [[Double]]

    /// Two stains plus the normalised cross product as the third ("Residual").
    public init(name1: String, stain1: [Double], name2: String, stain2: [Double]) {
        let a = StainMatrix.normalised(stain1)
        let b = StainMatrix.normalised(stain2)
        let c = StainMatrix.normalised([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])
        self.init(names: [name1, name2, "Residual"], rows: [a, b, c])
    }

    /// Three explicit stains; each row is normalised to unit length.
    public init(names: [String], rows: [[Double]]) {
        precondition(names.count == 3 && rows.count == 3 && rows.allSatisfy { $0.count == 3 })
        let r = rows.map(StainMatrix.normalised)
        self.names = names
        self.rows = r
        self.inverse = StainMatrix.invert3x3(r)
    }

    /// QuPath's default H&E: hematoxylin [0.65, 0.70, 0.29] (Ruifrok & Johnston), eosin
    /// [0.2159, 0.8012, 0.5581] (QuPath default, from the AMIDA13 challenge), residual = cross product.
    public static let hematoxylinEosin = StainMatrix(
        name1: "Hematoxylin", stain1: [0.65, 0.70, 0.29], name2: "Eosin", stain2: [0.2159, 0.8012, 0.5581])

    /// QuPath's default H-DAB: hematoxylin [0.65, 0.70, 0.29], DAB [0.27, 0.57, 0.78] (Ruifrok & Johnston).
    public static let hematoxylinDAB = StainMatrix(
        name1: "Hematoxylin", stain1: [0.65, 0.70, 0.29], name2: "DAB", stain2: [0.27, 0.57, 0.78])

    static func normalised(_ v: [Double]) -> [Double] {
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).squareRoot()
        precondition(n > 0, "stain vector must be non-zero")
        return v.map { $0 / n }
    }

    /// Explicit cofactor inverse of a 3×3 matrix (as QuPath's `ColorDeconvMatrix3x3`).
    static func invert3x3(_ m: [[Double]]) -> [[Double]] {
        let a = m[0][0], b = m[0][1], c = m[0][2]
        let d = m[1][0], e = m[1][1], f = m[1][2]
        let g = m[2][0], h = m[2][1], i = m[2][2]
        let A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g
        let det = a * A + b * B + c * C
        precondition(abs(det) > 1e-12, "stain matrix is singular")
        let inv = [
            [A, -(b * i - c * h), b * f - c * e],
            [B, a * i - c * g, -(a * f - c * d)],
            [C, -(a * h - b * g), a * e - b * d],
        ]
        return inv.map { $0.map { $0 / det } }
    }
}

/// The three deconvolved stain planes of an image (OD units).
public struct StainPlanes: Sendable, Equatable {
    public var planes: [FloatImage]
    public let names: [String]
    public var width: Int { planes[0].width }
    public var height: Int { planes[0].height }
}

public enum ColorDeconvolution {
    /// OD lookup table for 8-bit values against a white of 255: OD(v) = −log10(max(v, 1) / 255).
    public static let odTable: [Float] = (0..<256).map { v in
        Float(-log10(Double(max(v, 1)) / 255.0))
    }

    /// Optical density sum OD_R + OD_G + OD_B per pixel.
    public static func opticalDensitySum(_ image: RGBImage) -> FloatImage {
        let n = image.width * image.height
        var out = [Float](repeating: 0, count: n)
        odTable.withUnsafeBufferPointer { lut in
            image.pixels.withUnsafeBufferPointer { px in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<n {
                        o[i] = lut[Int(px[3 * i])] + lut[Int(px[3 * i + 1])] + lut[Int(px[3 * i + 2])]
                    }
                }
            }
        }
        return FloatImage(width: image.width, height: image.height, data: out)
    }

    /// Deconvolves an RGB image into the three stain planes of `stains` (OD units; values may be slightly
    /// negative where a pixel's colour lies outside the cone of the stain vectors, as in QuPath).
    public static func deconvolve(_ image: RGBImage, stains: StainMatrix) -> StainPlanes {
        let n = image.width * image.height
        var p0 = [Float](repeating: 0, count: n)
        var p1 = [Float](repeating: 0, count: n)
        var p2 = [Float](repeating: 0, count: n)
        let m = stains.inverse.map { $0.map { Float($0) } }
        let m00 = m[0][0], m01 = m[0][1], m02 = m[0][2]
        let m10 = m[1][0], m11 = m[1][1], m12 = m[1][2]
        let m20 = m[2][0], m21 = m[2][1], m22 = m[2][2]
        odTable.withUnsafeBufferPointer { lut in
            image.pixels.withUnsafeBufferPointer { px in
                p0.withUnsafeMutableBufferPointer { a in
                    p1.withUnsafeMutableBufferPointer { b in
                        p2.withUnsafeMutableBufferPointer { c in
                            for i in 0..<n {
                                let r = lut[Int(px[3 * i])], g = lut[Int(px[3 * i + 1])], bl = lut[Int(px[3 * i + 2])]
                                a[i] = r * m00 + g * m10 + bl * m20
                                b[i] = r * m01 + g * m11 + bl * m21
                                c[i] = r * m02 + g * m12 + bl * m22
                            }
                        }
                    }
                }
            }
        }
        let w = image.width, h = image.height
        return StainPlanes(
            planes: [
                FloatImage(width: w, height: h, data: p0),
                FloatImage(width: w, height: h, data: p1),
                FloatImage(width: w, height: h, data: p2),
            ],
            names: stains.names)
    }

    /// Recomposes 8-bit RGB from stain amounts (inverse of `deconvolve`): od = a·S, I = 255·10^(−od),
    /// rounded and clamped to [0, 255]. Used to check the round trip.
    public static func reconvolve(_ planes: StainPlanes, stains: StainMatrix) -> RGBImage {
        let w = planes.width, h = planes.height, n = w * h
        var out = [UInt8](repeating: 0, count: n * 3)
        let s = stains.rows
        for i in 0..<n {
            let a0 = Double(planes.planes[0].data[i]), a1 = Double(planes.planes[1].data[i]), a2 = Double(planes.planes[2].data[i])
            for c in 0..<3 {
                let od = a0 * s[0][c] + a1 * s[1][c] + a2 * s[2][c]
                let v = (255.0 * pow(10.0, -od)).rounded()
                out[3 * i + c] = UInt8(max(0, min(255, v)))
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}
