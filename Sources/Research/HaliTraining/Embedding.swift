// The embedder over the training code's patch sets (HaliInference runs the network; this only adapts the input).

public import HaliInference

extension Embedder {
    /// Features of a patch set (its side must be the network input side).
    public func features(_ set: PatchSet, threads: Int = 1) -> [Float] {
        features(pixels: set.pixels, count: set.count, height: set.side, width: set.side, threads: threads)
    }

    /// Arg-max class of the network's own head; refused for a headless backbone.
    public func predict(_ set: PatchSet) throws -> [Int] {
        guard net.config.hasHead else { throw NoHeadError() }
        return try predict(features: features(set), count: set.count)
    }
}
