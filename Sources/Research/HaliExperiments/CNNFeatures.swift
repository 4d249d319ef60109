// CNN features: the nucleus network's penultimate embedding (Sources/HaliNet, weights
// Deploy/models/hali-nuclei-v2.safetensors). Each cell becomes the network's input patch (metadata: 40 px covering
// 32 µm for v2) centred on its centroid, resampled from the image's µm/px by HaliTraining's PatchExtractor.

import Foundation
import HaliDatasets
import HaliImaging
import HaliInference
import HaliMath
import HaliNet
import HaliTraining

enum CNNFeatureProvider {
    static func make(weights: String, threads: Int = 2) throws -> ((CellData) throws -> Matrix)? {
        guard FileManager.default.fileExists(atPath: weights) else {
            throw ExperimentError.invalid("--features cnn: weights not found at \(weights)")
        }
        let (net, meta) = try WeightsFile.load(path: weights)
        let embedder = Embedder(net: net.folded(), metadata: meta)
        return { data in
            if data.slide != nil, meta.patchMicrons / 2 > CellData.contextMicrons {
                throw ExperimentError.invalid(
                    "\(weights): \(meta.patchMicrons) µm patches reach past the \(CellData.contextMicrons) µm of slide read around each block")
            }
            let side = meta.patchPixels
            let scale = meta.micronsPerPixel / data.micronsPerPixel
            var pixels: [UInt8] = []
            pixels.reserveCapacity(data.count * side * side * 3)
            // Cells are stored grouped by image (CellData.load sorts them), so one pass reads each image once.
            var current = -1
            var img = (image: RGBImage(width: 0, height: 0, pixels: []), dx: 0.0, dy: 0.0)
            for c in 0..<data.count {
                if data.image[c] != current {
                    current = data.image[c]
                    img = try data.pixels(ofImage: current)
                }
                PatchExtractor.patch(
                    img.image, cx: data.x[c] + img.dx, cy: data.y[c] + img.dy, side: side, scale: scale,
                    into: &pixels)
            }
            let f = embedder.features(pixels: pixels, count: data.count, height: side, width: side, threads: threads)
            return Matrix(rows: data.count, columns: f.count / max(data.count, 1), values: f)
        }
    }
}
