import Foundation
import HaliCore
import HaliIndex
import HaliIngest
import HaliTestFixtures
import Testing

@testable import HaliInterop
@testable import HaliStore

private let slidePath = SharedData.cmu1SmallRegion
private let task = TaskDefinition.builtIn.first { $0.name == "phenotype" }!

/// A temporary data dir with an index of 60 cells (a 10 × 6 grid, 40 px apart; every other one an outlined square,
/// the rest points) built from GeoJSON detections, and an empty label store.
private struct Fixture {
    let directory: String
    let slide: InteropSlide
    let store: LabelStore

    init() async throws {
        directory = NSTemporaryDirectory() + "hali-interop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/index", withIntermediateDirectories: true)
        var features: [String] = []
        for j in 0..<6 {
            for i in 0..<10 {
                let x = 1000.0 + Double(i) * 40, y = 800.0 + Double(j) * 40
                if (i + j) % 2 == 0 {
                    let ring = [[x - 6, y - 6], [x + 6, y - 6], [x + 6, y + 6], [x - 6, y + 6], [x - 6, y - 6]]
                    features.append(
                        #"{"type":"Feature","geometry":{"type":"Polygon","coordinates":[\#(ring)]},"properties":{"objectType":"detection"}}"#)
                } else {
                    features.append(
                        #"{"type":"Feature","geometry":{"type":"Point","coordinates":[\#(x),\#(y)]},"properties":{"objectType":"detection"}}"#)
                }
            }
        }
        let detections = directory + "/cells.geojson"
        try #"{"type":"FeatureCollection","features":[\#(features.joined(separator: ","))]}"#.write(
            toFile: detections, atomically: true, encoding: .utf8)
        _ = try await IndexBuilder.build(
            slidePath: slidePath, options: IngestOptions(), detections: (detections, .geojson), outputDirectory: directory + "/index")
        slide = try InteropSlide.load(dataDirectory: directory, slide: slidePath)
        store = try LabelStore(path: directory + "/labels.sqlite")
    }

    func freshStore() throws -> LabelStore { try LabelStore(path: directory + "/other-\(UUID().uuidString).sqlite") }

    func write(_ text: String, _ name: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    var seq: UInt64 = 0
    mutating func label(_ annotator: String, _ cell: UInt64, _ className: String?, undoOf previous: String? = nil) async throws {
        seq += 1
        let record = LabelRecord(
            annotator: annotator, slide: slide.id, task: task.name, cellID: cell, kind: className == nil ? .undo : .label, className: className,
            source: .manual, modelVersion: 0, clientSeq: seq, clientTimeMs: 0, serverTimeMs: 0, previousClass: previous)
        _ = try await store.append(record)
    }

    /// Labels of annotator "ann": 12 cells of all four classes, one relabelled, one undone.
    mutating func labelSome() async throws {
        let classes = task.classes.map(\.name)
        for k in 0..<12 { try await label("ann", UInt64(k * 5 + 1), classes[k % 4]) }
        try await label("ann", 6, "spindle")
        try await label("ann", 11, nil, undoOf: nil)
    }

    func cleanUp() {
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite struct InteropTests {
    @Test(arguments: [InteropFormat.geojson, .csv, .asap, .sliderunner])
    func roundTrip(format: InteropFormat) async throws {
        var fixture = try await Fixture()
        defer { fixture.cleanUp() }
        #expect(fixture.slide.table.count == 60)
        try await fixture.labelSome()
        let labels = try ExportLabels.annotator("ann", store: fixture.store, slide: fixture.slide.id, task: task.name)
        #expect(labels.classOfCell.count == 11)
        let out = fixture.directory + "/export.\(format.rawValue)"
        #expect(try Exporter.write(labels, format: format, slide: fixture.slide, task: task, to: out) == 11)

        let fresh = try fixture.freshStore()
        defer { fresh.close() }
        let plan = try await Importer.importFile(out, format: format, slide: fixture.slide, task: task, annotator: "ann", store: fresh)
        #expect(plan.unmatched.isEmpty)
        #expect(plan.records.count == 11)
        let events = try fresh.events(annotator: "ann", slide: fixture.slide.id, task: task.name)
        #expect(LabelState(replaying: events).classOfCell == labels.classOfCell)
        #expect(events.allSatisfy { $0.record.source == .imported })

        // Importing the same file again changes nothing.
        let again = try await Importer.importFile(out, format: format, slide: fixture.slide, task: task, annotator: "ann", store: fresh)
        #expect(again.records.isEmpty && again.unchanged == 11)
    }

    /// Suggestions ride along in GeoJSON with their confidence, and a label import leaves them out.
    @Test func geojsonSuggestionsAreNotImportedAsLabels() async throws {
        var fixture = try await Fixture()
        defer { fixture.cleanUp() }
        try await fixture.labelSome()
        var labels = try ExportLabels.annotator("ann", store: fixture.store, slide: fixture.slide.id, task: task.name)
        labels.suggestions = [2: .init(className: "epithelial", confidence: 0.75), 3: .init(className: "other", confidence: 0.5)]
        let out = fixture.directory + "/with-suggestions.geojson"
        try Exporter.write(labels, format: .geojson, slide: fixture.slide, task: task, to: out)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        let features = try #require(json["features"] as? [[String: Any]])
        #expect(features.count == 13)
        let suggested = features.filter { (($0["properties"] as? [String: Any])?["metadata"] as? [String: String])?["hali_source"] == "suggestion" }
        #expect(suggested.count == 2)
        #expect(((suggested.first?["properties"] as? [String: Any])?["measurements"] as? [String: Any])?["HALI confidence"] as? Double == 0.75)

        let fresh = try fixture.freshStore()
        defer { fresh.close() }
        let plan = try await Importer.importFile(out, format: .geojson, slide: fixture.slide, task: task, annotator: "ann", store: fresh)
        #expect(plan.records.count == 11)
        #expect(LabelState(replaying: try fresh.events(annotator: "ann", slide: fixture.slide.id, task: task.name)).classOfCell == labels.classOfCell)
    }

    @Test func exportShapes() async throws {
        var fixture = try await Fixture()
        defer { fixture.cleanUp() }
        try await fixture.labelSome()
        let labels = try ExportLabels.annotator("ann", store: fixture.store, slide: fixture.slide.id, task: task.name)

        let geo = fixture.directory + "/a.geojson"
        try Exporter.write(labels, format: .geojson, slide: fixture.slide, task: task, to: geo)
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: geo))) as! [String: Any]
        #expect(root["type"] as? String == "FeatureCollection")
        let features = root["features"] as! [[String: Any]]
        #expect(features.count == 11)
        let types = Set(features.map { ($0["geometry"] as! [String: Any])["type"] as! String })
        #expect(types == ["Polygon", "Point"])
        let properties = features[0]["properties"] as! [String: Any]
        #expect(properties["objectType"] as? String == "detection")
        let classification = properties["classification"] as! [String: Any]
        #expect((classification["color"] as! [Int]).count == 3)
        #expect((properties["measurements"] as! [String: Any])["Area µm^2"] != nil)

        let dsaPath = fixture.directory + "/a.json"
        try Exporter.write(labels, format: .dsa, slide: fixture.slide, task: task, to: dsaPath)
        let dsa = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dsaPath))) as! [String: Any]
        #expect(dsa["name"] is String)
        let elements = dsa["elements"] as! [[String: Any]]
        #expect(elements.count == 11)
        #expect(elements.allSatisfy { $0["type"] as? String == "point" && ($0["center"] as? [Double])?.count == 3 && $0["group"] is String })

        let xmlPath = fixture.directory + "/a.xml"
        try Exporter.write(labels, format: .asap, slide: fixture.slide, task: task, to: xmlPath)
        let xml = try String(contentsOfFile: xmlPath, encoding: .utf8)
        #expect(xml.contains("Type=\"Dot\"") && xml.contains("Type=\"Polygon\""))
        #expect(xml.components(separatedBy: "<Group ").count - 1 == task.classes.count)

        let csvPath = fixture.directory + "/a.csv"
        try Exporter.write(labels, format: .csv, slide: fixture.slide, task: task, to: csvPath)
        let lines = try String(contentsOfFile: csvPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "x,y,class,cell_id,annotator" && lines.count == 12)
    }

    @Test func consensusAndSlideRunnerPersons() async throws {
        var fixture = try await Fixture()
        defer { fixture.cleanUp() }
        // Cell 1: 2 × epithelial vs 1 × other → epithelial. Cell 2: one each of two classes → tie → none.
        try await fixture.label("a", 1, "epithelial")
        try await fixture.label("b", 1, "epithelial")
        try await fixture.label("c", 1, "other")
        try await fixture.label("a", 2, "spindle")
        try await fixture.label("b", 2, "other")
        let labels = try ExportLabels.consensus(store: fixture.store, slide: fixture.slide.id, task: task.name)
        #expect(labels.classOfCell == [1: "epithelial"])

        let path = fixture.directory + "/c.sqlite"
        try Exporter.write(labels, format: .sliderunner, slide: fixture.slide, task: task, to: path)
        let contents = try SlideRunnerFile.read(path: path)
        #expect(contents.slides.map(\.filename) == ["CMU-1-Small-Region.svs"])
        let spots = contents.spotsBySlide["CMU-1-Small-Region.svs"]!
        #expect(spots.count == 1)
        #expect(Set(spots[0].spot.labels.map(\.person)) == ["a", "b", "c"])
        #expect(spots[0].spot.agreedClass == "epithelial")
        let db = try SQLiteConnection(path: path, readOnly: true)
        #expect(try db.userVersion() == SlideRunnerFile.userVersion)
        let triggers = try db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
        try triggers.bind([])
        #expect(try triggers.step() && triggers.int(0) == 0)
        let persons = try db.prepare("SELECT count(*) FROM Persons")
        try persons.bind([])
        #expect(try persons.step() && persons.int(0) == 3)
    }

    @Test func unmatchedEntriesAreReported() async throws {
        let fixture = try await Fixture()
        defer { fixture.cleanUp() }
        let path = try fixture.write("x,y,class\n1000,800,epithelial\n1500,1500,other\n", "u.csv")
        let plan = try await Importer.importFile(path, format: .csv, slide: fixture.slide, task: task, annotator: "ann", store: fixture.store)
        #expect(plan.records.count == 1 && plan.records[0].cellID == 1)
        #expect(plan.unmatched == ["line 3"])
    }

    /// Each bad file is refused with its place named, and nothing is imported.
    @Test(arguments: [
        ("geojson", "{\"type\":\"FeatureCollection\",\"features\":[", "not valid JSON"),
        (
            "geojson",
            #"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1000,800]},"properties":{"classification":{"name":"other"}}},{"type":"Feature","properties":{}}]}"#,
            "feature 2"
        ),
        (
            "geojson",
            #"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1000,800]},"properties":{"classification":{"name":"other"}}},{"type":"Feature","geometry":{"type":"Point","coordinates":[1040,800]},"properties":{"classification":{"name":"tumour"}}}]}"#,
            "feature 2: class \"tumour\""
        ),
        (
            "geojson",
            #"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1000,800]},"properties":{"objectType":"annotation"}},{"type":"Feature","geometry":{"type":"Point","coordinates":[1000,800]},"properties":{"classification":{"name":"other"}}},{"type":"Feature","geometry":{"type":"Point","coordinates":[99999,800]},"properties":{"classification":{"name":"other"}}}]}"#,
            "feature 3: (99999.0, 800.0) lies outside"
        ),
        (
            "geojson",
            #"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1000,800]},"properties":{}}]}"#,
            "feature 1 has no classification"
        ),
        ("csv", "x,y,class\n1000,800,other\n1040,abc,other\n", "line 3"),
        ("csv", "x,y,class\n1000,800,other\n-50,800,other\n", "line 3: (-50.0, 800.0) lies outside"),
        (
            "asap",
            "<ASAP_Annotations><Annotations><Annotation Name=\"a\" Type=\"Dot\" PartOfGroup=\"other\"><Coordinates><Coordinate Order=\"0\" X=\"1000\" Y=\"800\"/></Coordinates></Annotation><Annotation Name=\"b\" Type=\"Dot\" PartOfGroup=\"ghost\"><Coordinates><Coordinate Order=\"0\" X=\"1040\" Y=\"800\"/></Coordinates></Annotation></Annotations><AnnotationGroups><Group Name=\"other\" PartOfGroup=\"None\" Color=\"#4363d8\"/></AnnotationGroups></ASAP_Annotations>",
            "Annotation 2 \"b\" (line 1): PartOfGroup \"ghost\" is not defined"
        ),
        (
            "asap",
            "<ASAP_Annotations><Annotations><Annotation Name=\"a\" Type=\"Dot\" PartOfGroup=\"other\"><Coordinates><Coordinate Order=\"0\" X=\"1000\" Y=\"800\"/></Coordinates>",
            "malformed XML"
        ),
        // Found by fuzzing: Foundation's XMLParser dereferenced NULL for a processing instruction without data.
        ("asap", "<?xml version=\"1.0\"?>\n<?xmAnnotationGroups?>\n<ASAP_Annotations></ASAP_Annotations>", "a processing instruction"),
        // Also found by fuzzing: an XML declaration without its "?>" that swallowed the next instruction.
        ("asap", "<?xml vekr=snoy\"@ons>\n<?x11?>\n>\nl=\"@on", "a processing instruction"),
        (
            "asap",
            "<ASAP_Annotations><Annotations><Annotation Name=\"a\" Type=\"Dot\" PartOfGroup=\"other\"><Coordinates><Coordinate Order=\"0\" X=\"1000\" Y=\"oops\"/></Coordinates></Annotation></Annotations><AnnotationGroups><Group Name=\"other\"/></AnnotationGroups></ASAP_Annotations>",
            "needs numeric X and Y"
        ),
        (
            "asap",
            "<ASAP_Annotations><Annotations><Annotation Name=\"a\" Type=\"Dot\" PartOfGroup=\"other\"><Coordinates><Coordinate Order=\"0\" X=\"1000\" Y=\"800\"/></Coordinates></Annotation><Annotation Name=\"far\" Type=\"Dot\" PartOfGroup=\"other\"><Coordinates><Coordinate Order=\"0\" X=\"1000\" Y=\"5000\"/></Coordinates></Annotation></Annotations><AnnotationGroups><Group Name=\"other\"/></AnnotationGroups></ASAP_Annotations>",
            "Annotation 2 \"far\" (line 1): (1000.0, 5000.0) lies outside"
        ),
    ])
    func badInputIsRefused(format: String, text: String, expected: String) async throws {
        let fixture = try await Fixture()
        defer { fixture.cleanUp() }
        let path = try fixture.write(text, "bad.\(format)")
        let error = await #expect(throws: FileError.self) {
            try await Importer.importFile(
                path, format: InteropFormat(rawValue: format)!, slide: fixture.slide, task: task, annotator: "ann", store: fixture.store)
        }
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
        #expect(try fixture.store.eventCount() == 0)
    }

    /// Found by fuzzing: an element name with bytes that are not UTF-8 trapped inside Foundation's XMLParser.
    @Test func asapThatIsNotUTF8IsRefused() async throws {
        let fixture = try await Fixture()
        defer { fixture.cleanUp() }
        let path = fixture.directory + "/latin.xml"
        let bytes =
            Array("<ASAP_Annotations><Annotations><Coordi".utf8) + [UInt8](repeating: 0xff, count: 16)
            + Array("/></Annotations></ASAP_Annotations>".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = await #expect(throws: FileError.self) {
            try await Importer.importFile(path, format: .asap, slide: fixture.slide, task: task, annotator: "ann", store: fixture.store)
        }
        #expect(error?.message.contains("not UTF-8") == true, "\(error?.message ?? "")")
    }

    @Test func olderSlideRunnerSchemaIsRefused() async throws {
        let fixture = try await Fixture()
        defer { fixture.cleanUp() }
        let path = fixture.directory + "/old.sqlite"
        do {
            // The v0 schema (SlideRunner's demo.sqlite): no guid, deleted, coordinateZ, exact_id, color, uuid.
            let db = try SQLiteConnection(path: path)
            try db.execute(
                """
                CREATE TABLE Annotations (uid INTEGER PRIMARY KEY AUTOINCREMENT, slide INTEGER, type INTEGER, agreedClass INTEGER);
                CREATE TABLE Annotations_coordinates (uid INTEGER PRIMARY KEY AUTOINCREMENT, coordinateX INTEGER, coordinateY INTEGER,
                    slide INTEGER, annoId INTEGER, orderIdx INTEGER);
                CREATE TABLE Annotations_label (uid INTEGER PRIMARY KEY AUTOINCREMENT, person INTEGER, class INTEGER, annoId INTEGER);
                CREATE TABLE Classes (uid INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
                CREATE TABLE Persons (uid INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
                CREATE TABLE Slides (uid INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT, width INTEGER, height INTEGER, directory TEXT);
                INSERT INTO Slides (filename, width, height) VALUES ('CMU-1-Small-Region.svs', 2220, 2967);
                INSERT INTO Classes (name) VALUES ('other');
                INSERT INTO Annotations (slide, type, agreedClass) VALUES (1, 1, 1);
                INSERT INTO Annotations_coordinates (coordinateX, coordinateY, slide, annoId, orderIdx) VALUES (1000, 800, 1, 1, 1);
                """)
        }
        let error = await #expect(throws: FileError.self) {
            try await Importer.importFile(path, format: .sliderunner, slide: fixture.slide, task: task, annotator: "ann", store: fixture.store)
        }
        #expect(error?.message.contains("older SlideRunner schema") == true, "\(error?.message ?? "")")
        #expect(try fixture.store.eventCount() == 0)
    }

    @Test func slideRunnerSpotOutsideSlideIsRefused() async throws {
        let fixture = try await Fixture()
        defer { fixture.cleanUp() }
        let path = fixture.directory + "/out.sqlite"
        try SlideRunnerFile.write(
            path: path, slide: .init(filename: "CMU-1-Small-Region.svs", width: 2220, height: 2967),
            classes: [.init(name: "other", color: "#4363d8")],
            spots: [
                .init(x: 1000, y: 800, labels: [.init(person: "ann", className: "other")], agreedClass: "other"),
                .init(x: 9000, y: 800, labels: [.init(person: "ann", className: "other")], agreedClass: "other"),
            ])
        let error = await #expect(throws: FileError.self) {
            try await Importer.importFile(path, format: .sliderunner, slide: fixture.slide, task: task, annotator: "ann", store: fixture.store)
        }
        #expect(error?.message.contains("Annotations uid 2") == true, "\(error?.message ?? "")")
        #expect(try fixture.store.eventCount() == 0)
    }
}
