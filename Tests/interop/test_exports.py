"""Checks `hali export` files with the readers other tools use: Python's json, xml.etree and sqlite3 always;
shapely (geometry validity) and SlideRunner_dataAccess (SlideRunner's own database layer) when installed, else
those tests skip. Needs a built `hali` (HALI env var, else .build/debug/hali) with the export/import commands."""
import json
import os
import sqlite3
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, SLIDE

HALI = os.environ.get("HALI", os.path.join(ROOT, ".build", "debug", "hali"))
TASK_CLASSES = {"epithelial", "inflammatory", "spindle", "other"}  # built-in task "phenotype"


def hali(*arguments):
    return subprocess.run([HALI, *arguments], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    if not os.path.exists(HALI):
        pytest.fail(f"{HALI} not built: run swift build first")
    if hali("export", "--help").returncode != 0:
        pytest.skip("this hali has no export command")
    work = tmp_path_factory.mktemp("exports")
    data = work / "data"
    # 20 cells: squares (outlines) and points, 40 px apart.
    features, labels = [], ["x,y,class"]
    classes = sorted(TASK_CLASSES)
    for k in range(20):
        x, y = 1000 + 40 * (k % 5), 800 + 40 * (k // 5)
        if k % 2 == 0:
            ring = [[x - 6, y - 6], [x + 6, y - 6], [x + 6, y + 6], [x - 6, y + 6], [x - 6, y - 6]]
            geometry = {"type": "Polygon", "coordinates": [ring]}
        else:
            geometry = {"type": "Point", "coordinates": [x, y]}
        features.append({"type": "Feature", "geometry": geometry, "properties": {"objectType": "detection"}})
        labels.append(f"{x},{y},{classes[k % 4]}")
    (work / "cells.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    (work / "labels.csv").write_text("\n".join(labels) + "\n")
    run = hali("ingest", SLIDE, "--detections", str(work / "cells.geojson"), "--out", str(data / "index"))
    assert run.returncode == 0, run.stderr
    run = hali("import", SLIDE, "--task", "phenotype", "--annotator", "ann", "--format", "csv", str(work / "labels.csv"),
               "--data-dir", str(data))
    assert run.returncode == 0, run.stderr
    files = {}
    for fmt in ["geojson", "csv", "asap", "dsa", "sliderunner"]:
        files[fmt] = work / f"out.{fmt}"
        run = hali("export", SLIDE, "--task", "phenotype", "--annotator", "ann", "--format", fmt, "--out", str(files[fmt]),
                   "--data-dir", str(data))
        assert run.returncode == 0, run.stderr
    return files


def test_geojson_is_a_qupath_feature_collection(exports):
    root = json.loads(exports["geojson"].read_text())
    assert root["type"] == "FeatureCollection" and len(root["features"]) == 20
    for feature in root["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] in ("Polygon", "Point")
        properties = feature["properties"]
        assert properties["objectType"] == "detection"
        assert properties["classification"]["name"] in TASK_CLASSES
        color = properties["classification"]["color"]
        assert len(color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in color)
        assert isinstance(properties["measurements"], dict)
        if feature["geometry"]["type"] == "Polygon":
            ring = feature["geometry"]["coordinates"][0]
            assert len(ring) >= 4 and ring[0] == ring[-1]


def test_geojson_geometries_are_valid_for_shapely(exports):
    shapely_geometry = pytest.importorskip("shapely.geometry")
    for feature in json.loads(exports["geojson"].read_text())["features"]:
        shape = shapely_geometry.shape(feature["geometry"])
        assert shape.is_valid
        if shape.geom_type == "Polygon":
            assert shape.area == pytest.approx(144, rel=0.01)  # 12 × 12 px squares


def test_asap_xml_defines_every_group(exports):
    root = ET.parse(exports["asap"]).getroot()
    assert root.tag == "ASAP_Annotations"
    groups = {g.get("Name") for g in root.find("AnnotationGroups").findall("Group")}
    assert groups == TASK_CLASSES
    annotations = root.find("Annotations").findall("Annotation")
    assert len(annotations) == 20
    for annotation in annotations:
        assert annotation.get("Type") in ("Dot", "Polygon")
        assert annotation.get("PartOfGroup") in groups
        coordinates = annotation.find("Coordinates").findall("Coordinate")
        assert len(coordinates) == (1 if annotation.get("Type") == "Dot" else 4)
        assert [int(c.get("Order")) for c in coordinates] == list(range(len(coordinates)))


def test_dsa_annotation_points_are_three_dimensional(exports):
    document = json.loads(exports["dsa"].read_text())
    assert isinstance(document["name"], str) and len(document["elements"]) == 20
    for element in document["elements"]:
        assert element["type"] == "point" and len(element["center"]) == 3 and element["center"][2] == 0
        assert element["group"] in TASK_CLASSES and element["label"]["value"] == element["group"]


def test_sliderunner_schema_with_sqlite3(exports):
    db = sqlite3.connect(exports["sliderunner"])
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    columns = {t: {row[1] for row in db.execute(f"PRAGMA table_info({t})")}
               for t in ["Slides", "Classes", "Persons", "Annotations", "Annotations_coordinates", "Annotations_label", "Log"]}
    assert {"uid", "slide", "guid", "lastModified", "deleted", "type", "agreedClass", "description", "clickable"} <= columns["Annotations"]
    assert {"coordinateX", "coordinateY", "coordinateZ", "slide", "annoId", "orderIdx"} <= columns["Annotations_coordinates"]
    assert {"person", "class", "exact_id", "annoId"} <= columns["Annotations_label"]
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0] == 0
    assert db.execute("SELECT name FROM Persons").fetchall() == [("ann",)]
    assert db.execute("SELECT count(*) FROM Annotations WHERE type = 1 AND agreedClass > 0").fetchone()[0] == 20
    assert db.execute("SELECT count(*) FROM Log").fetchone()[0] == 20


def test_sliderunner_dataaccess_reads_the_spots(exports, tmp_path):
    database = pytest.importorskip("SlideRunner_dataAccess.database")  # needs opencv too
    copy = tmp_path / "copy.sqlite"  # opening adds SlideRunner's triggers; keep the export as written
    copy.write_bytes(exports["sliderunner"].read_bytes())
    db = database.Database()
    db.open(str(copy))
    assert [name for _, name in db.listOfSlides()] == [os.path.basename(SLIDE)]
    db.loadIntoMemory(1)
    assert len(db.annotations) == 20
    classes = {uid: name for name, uid, *_ in db.getAllClasses()}
    assert set(classes.values()) == TASK_CLASSES
    for annotation in db.annotations.values():
        assert type(annotation).__name__ == "spotAnnotation"
        assert classes[annotation.agreedClass] in TASK_CLASSES
        assert len(annotation.labels) == 1


def test_cells_csv_lists_every_cell_in_id_order(tmp_path):
    """`hali cells INDEX --csv`: one row per cell, ids 1..n in (y, x) order, centroids where the detections put them."""
    if not os.path.exists(HALI):
        pytest.fail(f"{HALI} not built: run swift build first")
    points = [(1500, 900), (1000, 800), (1200, 800)]
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                 "properties": {"objectType": "detection", "classification": {"name": name}}}
                for (x, y), name in zip(points, ['Tumor, "invasive"', "Stroma", "Stroma"])]
    (tmp_path / "cells.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    run = hali("ingest", SLIDE, "--detections", str(tmp_path / "cells.geojson"), "--out", str(tmp_path / "index"))
    assert run.returncode == 0, run.stderr
    index = next((tmp_path / "index").glob("*.hidx"))
    run = hali("cells", str(index), "--csv", str(tmp_path / "cells.csv"))
    assert run.returncode == 0, run.stderr
    import csv
    with open(tmp_path / "cells.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["cell", "x", "y", "min_x", "min_y", "max_x", "max_y", "area_um2", "class"]
    rows = rows[1:]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert [(float(r[1]), float(r[2])) for r in rows] == [(1000, 800), (1200, 800), (1500, 900)]
    assert [r[8] for r in rows] == ["Stroma", "Stroma", 'Tumor, "invasive"']  # quoted in the file, read back whole
    run = hali("cells", str(index), "--csv", str(tmp_path / "no-such-dir" / "cells.csv"))
    assert run.returncode != 0 and "cannot write" in run.stderr


@pytest.fixture(scope="module")
def detected_exports(tmp_path_factory):
    """CMU-1 ingested with the built-in detector, every cell labelled (through `hali import`), exported as GeoJSON
    and ASAP XML: every traced outline of a real slide, not drawn squares."""
    if not os.path.exists(HALI):
        pytest.fail(f"{HALI} not built: run swift build first")
    work = tmp_path_factory.mktemp("detected")
    data = work / "data"
    run = hali("ingest", SLIDE, "--out", str(data / "index"))
    assert run.returncode == 0, run.stderr
    run = hali("cells", str(next((data / "index").glob("*.hidx"))), "--csv", str(work / "cells.csv"))
    assert run.returncode == 0, run.stderr
    import csv
    with open(work / "cells.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    classes = sorted(TASK_CLASSES)
    (work / "labels.csv").write_text("x,y,class\n" + "".join(
        f"{c['x']},{c['y']},{classes[k % 4]}\n" for k, c in enumerate(cells)))
    run = hali("import", SLIDE, "--task", "phenotype", "--annotator", "ann", "--format", "csv", str(work / "labels.csv"),
               "--data-dir", str(data))
    assert run.returncode == 0, run.stderr
    files = {"cells": len(cells)}
    for fmt in ["geojson", "asap"]:
        files[fmt] = work / f"out.{fmt}"
        run = hali("export", SLIDE, "--task", "phenotype", "--annotator", "ann", "--format", fmt, "--out", str(files[fmt]),
                   "--data-dir", str(data))
        assert run.returncode == 0, run.stderr
    return files


def test_every_detected_outline_is_a_valid_polygon(detected_exports):
    """Outlines traced from pixels that touch only at a diagonal corner used to pass twice through that corner
    (shapely: "Ring Self-intersection"); every exported outline must be a valid simple polygon, in both formats."""
    pytest.importorskip("shapely")
    from shapely.geometry import Polygon, shape
    from shapely.validation import explain_validity
    features = json.loads(detected_exports["geojson"].read_text())["features"]
    rings = [f["geometry"]["coordinates"][0] for f in features if f["geometry"]["type"] == "Polygon"]
    asap = [[(float(c.get("X")), float(c.get("Y"))) for c in a.find("Coordinates").findall("Coordinate")]
            for a in ET.parse(detected_exports["asap"]).getroot().find("Annotations").findall("Annotation")
            if a.get("Type") == "Polygon"]
    assert len(rings) == len(asap) == detected_exports["cells"] > 3000  # every cell of CMU-1 has an outline
    invalid = [explain_validity(shape(f["geometry"])) for f in features if not shape(f["geometry"]).is_valid]
    invalid_asap = [explain_validity(Polygon(p)) for p in asap if not Polygon(p).is_valid]
    assert not invalid, f"{len(invalid)} of {len(rings)} GeoJSON outlines invalid, e.g. {invalid[:3]}"
    assert not invalid_asap, f"{len(invalid_asap)} of {len(asap)} ASAP outlines invalid, e.g. {invalid_asap[:3]}"
    assert all(Polygon(p).area > 0 for p in asap)
