public import Foundation
import HaliStore

/// A SlideRunner annotation database (`.sqlite`), written and read with the schema of SlideRunner_dataAccess
/// (`database.py`, current schema, `PRAGMA user_version` 3 after its own migrations): tables Slides, Classes, Persons,
/// Annotations, Annotations_coordinates, Annotations_label and Log.
///
/// Only spot annotations (type 1, one coordinate with orderIdx 1) are written. No triggers are created: SlideRunner's
/// triggers call Python functions (`pycurrent_time`, `generate_uuid`, `randcolor`) that a non-Python writer cannot
/// provide, so `guid` and `lastModified` are filled in here instead. SlideRunner adds its triggers when it opens a
/// file (`addTriggers`).
public enum SlideRunnerFile {
    public static let userVersion = 3
    public static let spotType: Int64 = 1

    public struct SlideEntry: Sendable, Equatable {
        public var filename: String
        public var width: Int64
        public var height: Int64
        public var directory: String
        public var uuid: String
        public init(filename: String, width: Int64, height: Int64, directory: String = "", uuid: String = UUID().uuidString.lowercased()) {
            self.filename = filename
            self.width = width
            self.height = height
            self.directory = directory
            self.uuid = uuid
        }
    }

    public struct ClassEntry: Sendable, Equatable {
        public var name: String
        /// "#rrggbb"
        public var color: String
        public init(name: String, color: String) {
            self.name = name
            self.color = color
        }
    }

    public struct SpotLabel: Sendable, Equatable {
        public var person: String
        public var className: String
        public init(person: String, className: String) {
            self.person = person
            self.className = className
        }
    }

    public struct Spot: Sendable, Equatable {
        /// Level-0 pixels (SlideRunner stores integers).
        public var x: Int64
        public var y: Int64
        public var labels: [SpotLabel]
        /// The class shown for the spot (nil: none agreed, stored as 0).
        public var agreedClass: String?
        public var description: String
        public init(x: Int64, y: Int64, labels: [SpotLabel], agreedClass: String?, description: String = "") {
            self.x = x
            self.y = y
            self.labels = labels
            self.agreedClass = agreedClass
            self.description = description
        }
    }

    /// What `read` found for one slide: its spots (with the Annotations uid that names them in messages) and how many
    /// other annotations (areas, polygons, circles…) were skipped.
    public struct Contents: Sendable {
        public var slides: [SlideEntry]
        public var spotsBySlide: [String: [(uid: Int64, spot: Spot)]]
        public var skippedNonSpot: Int
    }

    static let schema = """
        CREATE TABLE `Annotations_label` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, `person` INTEGER, `class` INTEGER,
            `exact_id` INTEGER, `annoId` INTEGER);
        CREATE TABLE `Annotations_coordinates` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, `coordinateX` INTEGER,
            `coordinateY` INTEGER, `coordinateZ` INTEGER DEFAULT 0, `slide` INTEGER, `annoId` INTEGER, `orderIdx` INTEGER);
        CREATE TABLE `Annotations` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, `slide` INTEGER, `guid` TEXT,
            `lastModified` REAL DEFAULT 0, `deleted` INTEGER DEFAULT 0, `type` INTEGER, `agreedClass` INTEGER,
            `description` TEXT, `clickable` INTEGER DEFAULT 1);
        CREATE TABLE `Classes` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, `name` TEXT, `color` TEXT, `clickable` INTEGER DEFAULT 1);
        CREATE TABLE `Persons` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, `name` TEXT, `isExactUser` INTEGER DEFAULT 0);
        CREATE TABLE `Slides` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, `filename` TEXT, `width` INTEGER, `height` INTEGER,
            `directory` TEXT, `uuid` TEXT, `exactImageID` TEXT, `EXACTUSER` INTEGER DEFAULT 0);
        CREATE TABLE `Log` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, `dateTime` FLOAT, `labelId` INTEGER);
        """

    /// Columns the current schema has and the old v0 schema lacks; a file missing any of them is refused.
    static let requiredColumns: [String: [String]] = [
        "Annotations": ["uid", "slide", "guid", "deleted", "type", "agreedClass"],
        "Annotations_coordinates": ["coordinateX", "coordinateY", "coordinateZ", "annoId", "orderIdx"],
        "Annotations_label": ["person", "class", "exact_id", "annoId"],
        "Classes": ["uid", "name", "color"],
        "Persons": ["uid", "name"],
        "Slides": ["uid", "filename", "width", "height", "uuid"],
    ]

    /// Writes a new database at `path` (replacing any file there) in one transaction, via a temporary file renamed
    /// into place, so a failed export leaves nothing half-written.
    public static func write(path: String, slide: SlideEntry, classes: [ClassEntry], spots: [Spot]) throws {
        let temporary = path + ".tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            try writeFile(temporary, slide: slide, classes: classes, spots: spots)
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    private static func writeFile(_ path: String, slide: SlideEntry, classes: [ClassEntry], spots: [Spot]) throws {
        let db = try SQLiteConnection(path: path)
        try db.execute("BEGIN")
        try db.execute(schema)
        let now = Date().timeIntervalSince1970
        try db.prepare("INSERT INTO Slides (uid, filename, width, height, directory, uuid) VALUES (1, ?1, ?2, ?3, ?4, ?5)").run([
            .text(slide.filename), .int(slide.width), .int(slide.height), .text(slide.directory), .text(slide.uuid),
        ])
        var classID: [String: Int64] = [:]
        let insertClass = try db.prepare("INSERT INTO Classes (name, color) VALUES (?1, ?2)")
        for entry in classes where classID[entry.name] == nil {
            try insertClass.run([.text(entry.name), .text(entry.color)])
            classID[entry.name] = db.lastInsertRowID
        }
        var personID: [String: Int64] = [:]
        let insertPerson = try db.prepare("INSERT INTO Persons (name, isExactUser) VALUES (?1, 0)")
        for person in spots.flatMap({ $0.labels.map(\.person) }) where personID[person] == nil {
            try insertPerson.run([.text(person)])
            personID[person] = db.lastInsertRowID
        }
        let insertAnnotation = try db.prepare(
            "INSERT INTO Annotations (slide, guid, lastModified, deleted, type, agreedClass, description, clickable) VALUES (1, ?1, ?2, 0, ?3, ?4, ?5, 1)"
        )
        let insertCoordinate = try db.prepare(
            "INSERT INTO Annotations_coordinates (coordinateX, coordinateY, coordinateZ, slide, annoId, orderIdx) VALUES (?1, ?2, 0, 1, ?3, 1)")
        let insertLabel = try db.prepare("INSERT INTO Annotations_label (person, class, annoId) VALUES (?1, ?2, ?3)")
        let insertLog = try db.prepare("INSERT INTO Log (dateTime, labelId) VALUES (?1, ?2)")
        for spot in spots {
            for label in spot.labels where classID[label.className] == nil {
                throw StoreError(path: path, message: "class \"\(label.className)\" is not among the classes written")
            }
            let agreed = spot.agreedClass.flatMap { classID[$0] } ?? 0
            try insertAnnotation.run([
                .text(UUID().uuidString.lowercased()), .double(now), .int(spotType), .int(agreed), .text(spot.description),
            ])
            let annotation = db.lastInsertRowID
            try insertCoordinate.run([.int(spot.x), .int(spot.y), .int(annotation)])
            for label in spot.labels {
                try insertLabel.run([.int(personID[label.person]!), .int(classID[label.className]!), .int(annotation)])
                try insertLog.run([.double(now), .int(db.lastInsertRowID)])
            }
        }
        try db.execute("PRAGMA user_version = \(userVersion)")
        try db.execute("COMMIT")
    }

    /// Reads the spot annotations of every slide in the file (deleted ones skipped). Refuses files of the old v0
    /// schema (user_version 0 or missing columns), naming what is missing.
    public static func read(path: String) throws -> Contents {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError(path: path, message: "no such file") }
        let db = try SQLiteConnection(path: path, readOnly: true)
        let version = try db.userVersion()
        for (table, columns) in requiredColumns.sorted(by: { $0.key < $1.key }) {
            let info = try db.prepare("PRAGMA table_info(`\(table)`)")
            try info.bind([])
            var present: Set<String> = []
            while try info.step() { if let name = info.text(1) { present.insert(name) } }
            if present.isEmpty {
                throw StoreError(path: path, message: "not a SlideRunner database: table \(table) is missing")
            }
            let missing = columns.filter { !present.contains($0) }
            if !missing.isEmpty {
                throw StoreError(
                    path: path,
                    message:
                        "older SlideRunner schema (user_version \(version)): table \(table) lacks \(missing.joined(separator: ", ")); open and save it in a current SlideRunner first"
                )
            }
        }
        if version < 1 {
            throw StoreError(
                path: path, message: "older SlideRunner schema (user_version \(version)); open and save it in a current SlideRunner first")
        }

        var slides: [Int64: SlideEntry] = [:]
        let slideRows = try db.prepare("SELECT uid, filename, width, height, directory, uuid FROM Slides ORDER BY uid")
        try slideRows.bind([])
        while try slideRows.step() {
            slides[slideRows.int(0)] = SlideEntry(
                filename: slideRows.text(1) ?? "", width: slideRows.int(2), height: slideRows.int(3), directory: slideRows.text(4) ?? "",
                uuid: slideRows.text(5) ?? "")
        }
        var classes: [Int64: String] = [:]
        let classRows = try db.prepare("SELECT uid, name FROM Classes")
        try classRows.bind([])
        while try classRows.step() { classes[classRows.int(0)] = classRows.text(1) ?? "" }
        var persons: [Int64: String] = [:]
        let personRows = try db.prepare("SELECT uid, name FROM Persons")
        try personRows.bind([])
        while try personRows.step() { persons[personRows.int(0)] = personRows.text(1) ?? "" }

        var labels: [Int64: [SpotLabel]] = [:]
        let labelRows = try db.prepare("SELECT annoId, person, class, uid FROM Annotations_label ORDER BY uid")
        try labelRows.bind([])
        while try labelRows.step() {
            let annotation = labelRows.int(0)
            guard let className = classes[labelRows.int(2)] else {
                throw StoreError(path: path, message: "Annotations_label uid \(labelRows.int(3)): class \(labelRows.int(2)) is not in Classes")
            }
            labels[annotation, default: []].append(SpotLabel(person: persons[labelRows.int(1)] ?? "", className: className))
        }

        var spotsBySlide: [String: [(uid: Int64, spot: Spot)]] = [:]
        var skipped = 0
        let annotations = try db.prepare(
            "SELECT uid, slide, type, agreedClass, description FROM Annotations WHERE deleted IS NULL OR deleted = 0 ORDER BY uid")
        let coordinates = try db.prepare(
            "SELECT coordinateX, coordinateY FROM Annotations_coordinates WHERE annoId = ?1 ORDER BY orderIdx LIMIT 1")
        try annotations.bind([])
        while try annotations.step() {
            let uid = annotations.int(0)
            guard annotations.int(2) == spotType else {
                skipped += 1
                continue
            }
            guard let slide = slides[annotations.int(1)] else {
                throw StoreError(path: path, message: "Annotations uid \(uid): slide \(annotations.int(1)) is not in Slides")
            }
            try coordinates.bind([.int(uid)])
            guard try coordinates.step() else {
                throw StoreError(path: path, message: "Annotations uid \(uid): spot without a coordinate")
            }
            let agreedID = annotations.int(3)
            let spot = Spot(
                x: coordinates.int(0), y: coordinates.int(1), labels: labels[uid] ?? [], agreedClass: agreedID == 0 ? nil : classes[agreedID],
                description: annotations.text(4) ?? "")
            spotsBySlide[slide.filename, default: []].append((uid, spot))
        }
        return Contents(slides: slides.keys.sorted().map { slides[$0]! }, spotsBySlide: spotsBySlide, skippedNonSpot: skipped)
    }
}
