// Running the learned nucleus detector (HaliNet.NucleusMapNet + HaliImaging's map detection) on slide pixels.
// HaliTraining/DetectorTraining.swift trains it and documents its targets and input.

import Foundation
public import HaliImaging
public import HaliNet

/// The learned detector: OD input → NucleusMapNet → maps → nuclei. Value type; `detect` may run concurrently.
public struct LearnedNucleusDetector: Sendable {
    public static let inputScale: Float = 3
    public let net: FoldedNucleusMapNet
    /// Resampling and stain planes (the working pixel size comes from the weights).
    public var detector: NucleusDetector
    public var maps: NucleusMapParameters
    /// Names the weights (e.g. their file name) in manifests.
    public var source: String
    /// The network's activation buffers, one per concurrent caller, kept between tiles (shared by copies).
    let workspaces = NucleusMapWorkspacePool()

    public init(
        net: NucleusMapNet, workingPixelSizeMicrons: Double, maps: NucleusMapParameters = .init(),
        stains: StainMatrix = .hematoxylinEosin, source: String = ""
    ) {
        self.net = net.folded()
        var p = NucleusDetectionParameters()
        p.workingPixelSizeMicrons = workingPixelSizeMicrons
        detector = NucleusDetector(parameters: p, stains: stains)
        self.maps = maps
        self.source = source
    }

    /// Loads weights written by `save`; their metadata carries the working pixel size and the thresholds chosen at training.
    public static func load(path: String, stains: StainMatrix = .hematoxylinEosin) throws -> LearnedNucleusDetector {
        guard let d = FileManager.default.contents(atPath: path) else { throw FileFormatError.io("cannot read detector weights \(path)") }
        let file = try SafeTensors.parse([UInt8](d))
        let net = try NucleusMapNet.load(file)
        let m = file.metadata
        guard let mppText = m["hali.working_mpp"], let mpp = Double(mppText), mpp > 0 else {
            throw FileFormatError.io("\(path): hali.working_mpp missing or not a positive number")
        }
        var maps = NucleusMapParameters()
        if let v = m["hali.seed_threshold"].flatMap(Double.init) { maps.seedThreshold = v }
        if let v = m["hali.foreground_threshold"].flatMap(Double.init) { maps.foregroundThreshold = v }
        if let v = m["hali.peak_radius_um"].flatMap(Double.init) { maps.peakRadiusMicrons = v }
        if let v = m["hali.min_area_um2"].flatMap(Double.init) { maps.minAreaMicrons2 = v }
        return LearnedNucleusDetector(
            net: net, workingPixelSizeMicrons: mpp, maps: maps, stains: stains,
            source: URL(fileURLWithPath: path).lastPathComponent)
    }

    public static func save(
        _ net: NucleusMapNet, workingPixelSizeMicrons: Double, maps: NucleusMapParameters,
        extra: [String: String], path: String
    ) throws {
        var m = extra
        m["hali.working_mpp"] = String(workingPixelSizeMicrons)
        m["hali.seed_threshold"] = String(maps.seedThreshold)
        m["hali.foreground_threshold"] = String(maps.foregroundThreshold)
        m["hali.peak_radius_um"] = String(maps.peakRadiusMicrons)
        m["hali.min_area_um2"] = String(maps.minAreaMicrons2)
        m["hali.input"] = "optical density of R,G,B x \(LearnedNucleusDetector.inputScale)"
        let url = URL(fileURLWithPath: path)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(net.safetensors(metadata: m)).write(to: url, options: .atomic)
    }

    /// Foreground and centre probability maps of a working image (each working width × height). `origin`: where the
    /// image starts on the slide, in working pixels (multiples of 4; see `FoldedNucleusMapNet`).
    public func probabilityMaps(_ working: WorkingImage, origin: (x: Int, y: Int) = (0, 0))
        -> (foreground: FloatImage, centre: FloatImage)
    {
        workspaces.withWorkspace { space in
            Self.probabilityMaps(
                net: net, input: working.opticalDensity, width: working.width, height: working.height,
                workspace: space, origin: origin)
        }
    }

    /// Runs the folded network on an OD image, padding right and bottom with white (OD 0) to multiples of 4.
    public static func probabilityMaps(
        net: FoldedNucleusMapNet, input od: [Float], width w: Int, height h: Int,
        workspace: NucleusMapWorkspace? = nil, origin: (x: Int, y: Int) = (0, 0)
    )
        -> (foreground: FloatImage, centre: FloatImage)
    {
        let pw = (w + 3) / 4 * 4, ph = (h + 3) / 4 * 4
        var x = [Float](repeating: 0, count: pw * ph * 3)
        for y in 0..<h { for i in 0..<(w * 3) { x[(y * pw) * 3 + i] = od[(y * w) * 3 + i] * inputScale } }
        let logits = net.logits(x, height: ph, width: pw, workspace: workspace, originX: origin.x, originY: origin.y)
        var fg = FloatImage(width: w, height: h), centre = FloatImage(width: w, height: h)
        for y in 0..<h {
            for xx in 0..<w {
                let i = (y * pw + xx) * 2
                fg.data[y * w + xx] = 1 / (1 + expf(-logits[i]))
                centre.data[y * w + xx] = 1 / (1 + expf(-logits[i + 1]))
            }
        }
        return (fg, centre)
    }

    /// Nuclei of an image (pixel coordinates of `image`). `workingOrigin`: where the image starts on the slide, in
    /// working pixels (multiples of 4), so that tiles of one slide agree bit for bit on the pixels they share.
    public func detect(_ image: RGBImage, micronsPerPixel: Double, workingOrigin: (x: Int, y: Int) = (0, 0)) -> [Nucleus] {
        guard image.width > 2 && image.height > 2 else { return [] }
        let working = detector.workingImage(image, micronsPerPixel: micronsPerPixel)
        let (fg, centre) = probabilityMaps(working, origin: workingOrigin)
        return NucleusDetector.detect(working, foreground: fg, centre: centre, parameters: maps)
    }
}
