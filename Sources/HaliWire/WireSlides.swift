// protobuf-c ⇄ Swift for slides and patches: OpenSession and SessionState, GetPatch and Patch. WireCodec.swift owns
// the envelope and the arena; each message here builds its C struct in the arena and reads one back.

import CHaliProto
import CProtobufC
import HaliCore

extension OpenSession {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__OpenSession> {
        let m = a.message(hali__v1__open_session__init)
        m.pointee.slide_id = a.string(slideID)
        m.pointee.task = a.string(task)
        return m
    }

    init(c m: Hali__V1__OpenSession) {
        self.init(slideID: string(m.slide_id), task: string(m.task))
    }
}

extension SessionState {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__SessionState> {
        let m = a.message(hali__v1__session_state__init)
        m.pointee.session_id = a.string(sessionID)
        m.pointee.slide = slide?.makeC(a)
        m.pointee.task = a.string(task)
        m.pointee.n_classes = classes.count
        m.pointee.classes = a.array(classes.map { $0.makeC(a) })
        m.pointee.labels_done = labelsDone
        m.pointee.model_version = modelVersion
        m.pointee.validation_accuracy = validationAccuracy
        m.pointee.current_region = currentRegion?.makeC(a)
        m.pointee.last_acked_seq = lastAckedSeq
        return m
    }

    init(c m: Hali__V1__SessionState) {
        self.init(
            sessionID: string(m.session_id), slide: m.slide.map { SlideInfo(c: $0) }, task: string(m.task),
            classes: array(m.classes, m.n_classes) { ClassDef(c: $0) }, labelsDone: m.labels_done, modelVersion: m.model_version,
            validationAccuracy: m.validation_accuracy, currentRegion: Region(c: m.current_region), lastAckedSeq: m.last_acked_seq)
    }
}

extension GetPatch {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__GetPatch> {
        let m = a.message(hali__v1__get_patch__init)
        switch target {
        case .region(let r):
            m.pointee.target_case = HALI__V1__GET_PATCH__TARGET_REGION
            m.pointee.region = r.makeC(a)
        case .patchID(let id):
            m.pointee.target_case = HALI__V1__GET_PATCH__TARGET_PATCH_ID
            // A oneof string is present even when empty, so encode "" as a real empty string.
            m.pointee.patch_id = a.string(id) ?? a.array([CChar(0)])
        case nil:
            break
        }
        m.pointee.level = level
        m.pointee.include_pixels = boolean(includePixels)
        m.pointee.include_contours = boolean(includeContours)
        m.pointee.pixel_format = cEnum(pixelFormat)
        m.pointee.jpeg_quality = jpegQuality
        return m
    }

    init(c m: Hali__V1__GetPatch) {
        let target: GetPatch.Target?
        switch m.target_case {
        case HALI__V1__GET_PATCH__TARGET_REGION: target = Region(c: m.region).map { .region($0) }
        case HALI__V1__GET_PATCH__TARGET_PATCH_ID: target = .patchID(string(m.patch_id))
        default: target = nil
        }
        self.init(
            target: target, level: m.level, includePixels: boolean(m.include_pixels), includeContours: boolean(m.include_contours),
            pixelFormat: openEnum(m.pixel_format, default: .none), jpegQuality: m.jpeg_quality)
    }
}

extension Patch {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Patch> {
        let m = a.message(hali__v1__patch__init)
        m.pointee.patch_id = a.string(patchID)
        m.pointee.region = region.makeC(a)
        m.pointee.level = level
        m.pointee.downsample = downsample
        m.pointee.mpp = mpp
        m.pointee.width = width
        m.pointee.height = height
        m.pointee.pixel_format = cEnum(pixelFormat)
        m.pointee.pixels = a.bytes(pixels)
        m.pointee.n_cells = cells.count
        m.pointee.cells = a.array(cells.map { $0.makeC(a) })
        m.pointee.model_version = modelVersion
        return m
    }

    init(c m: Hali__V1__Patch) {
        self.init(
            patchID: string(m.patch_id), region: Region(c: m.region) ?? Region(x: 0, y: 0, width: 0, height: 0), level: m.level,
            downsample: m.downsample, mpp: m.mpp, width: m.width, height: m.height, pixelFormat: openEnum(m.pixel_format, default: .none),
            pixels: array(m.pixels.data, m.pixels.len) { $0 }, cells: array(m.cells, m.n_cells) { Cell(c: $0) }, modelVersion: m.model_version)
    }
}

extension GetGallery {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__GetGallery> {
        let m = a.message(hali__v1__get_gallery__init)
        m.pointee.class_name = a.string(className)
        m.pointee.max_cells = maxCells
        m.pointee.offset = offset
        m.pointee.order = cEnum(order)
        m.pointee.crop_um = cropMicrons
        m.pointee.pixel_format = cEnum(pixelFormat)
        m.pointee.jpeg_quality = jpegQuality
        m.pointee.include_contours = boolean(includeContours)
        return m
    }

    init(c m: Hali__V1__GetGallery) {
        self.init(
            className: string(m.class_name), maxCells: m.max_cells, offset: m.offset, order: openEnum(m.order, default: .leastConfident),
            cropMicrons: m.crop_um, pixelFormat: openEnum(m.pixel_format, default: .none), jpegQuality: m.jpeg_quality,
            includeContours: boolean(m.include_contours))
    }
}

extension Gallery {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Gallery> {
        let m = a.message(hali__v1__gallery__init)
        m.pointee.class_name = a.string(className)
        m.pointee.model_version = modelVersion
        m.pointee.total = total
        m.pointee.offset = offset
        m.pointee.n_crops = crops.count
        m.pointee.crops = a.array(crops.map { $0.makeC(a) })
        m.pointee.n_cell_ids = cellIDs.count
        m.pointee.cell_ids = a.array(cellIDs)
        m.pointee.pick_strategy = cEnum(pickStrategy)
        return m
    }

    init(c m: Hali__V1__Gallery) {
        self.init(
            className: string(m.class_name), modelVersion: m.model_version, total: m.total, offset: m.offset,
            crops: array(m.crops, m.n_crops) { $0?.pointee }.compactMap { $0.map { Patch(c: $0) } }, cellIDs: array(m.cell_ids, m.n_cell_ids) { $0 },
            pickStrategy: openEnum(m.pick_strategy, default: .default))
    }
}

extension GetCellPicks {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__GetCellPicks> {
        let m = a.message(hali__v1__get_cell_picks__init)
        m.pointee.max_cells = maxCells
        m.pointee.strategy = cEnum(strategy)
        m.pointee.crop_um = cropMicrons
        m.pointee.pixel_format = cEnum(pixelFormat)
        m.pointee.jpeg_quality = jpegQuality
        m.pointee.include_contours = boolean(includeContours)
        m.pointee.n_skip_cell_ids = skipCellIDs.count
        m.pointee.skip_cell_ids = a.array(skipCellIDs)
        return m
    }

    init(c m: Hali__V1__GetCellPicks) {
        self.init(
            maxCells: m.max_cells, strategy: openEnum(m.strategy, default: .default), cropMicrons: m.crop_um,
            pixelFormat: openEnum(m.pixel_format, default: .none), jpegQuality: m.jpeg_quality, includeContours: boolean(m.include_contours),
            skipCellIDs: array(m.skip_cell_ids, m.n_skip_cell_ids) { $0 })
    }
}
