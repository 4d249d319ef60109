"""HALI's DSA annotation JSON against the schema the Digital Slide Archive itself validates with.

The schema is `AnnotationSchema.annotationSchema` in `girder_large_image_annotation/models/annotation.py` (the
large_image project's Girder plugin). The plugin needs a Girder server to import, so this test downloads its wheel
from PyPI (no dependencies), takes the schema's source (`extendSchema` and `class AnnotationSchema`, plain dicts),
and validates `hali export --format dsa` output with `jsonschema`. It skips when PyPI or jsonschema is unavailable.
"""
import glob
import json
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SLIDE = os.path.join(ROOT, "..", "shared", "data", "slides", "CMU-1-Small-Region.svs")
HALI = os.environ.get("HALI_BIN", os.path.join(ROOT, ".build", "debug", "hali"))


def dsa_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    out = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(tmp_path),
                          "girder-large-image-annotation"], capture_output=True, text=True, timeout=120)
    wheels = glob.glob(str(tmp_path / "girder_large_image_annotation-*.whl"))
    if out.returncode != 0 or not wheels:
        pytest.skip(f"cannot download girder-large-image-annotation: {out.stderr.strip()[:200]}")
    source = zipfile.ZipFile(wheels[0]).read("girder_large_image_annotation/models/annotation.py").decode()
    start = source.index("def extendSchema(")
    end = source.index("class Annotation(AccessControlledModel)")
    namespace = {}
    exec("import copy, re, enum\n" + source[start:end], namespace)
    return jsonschema, namespace["AnnotationSchema"].annotationSchema, os.path.basename(wheels[0])


def test_dsa_export_validates_against_large_image_schema(tmp_path):
    jsonschema, schema, wheel = dsa_schema(tmp_path)
    data = tmp_path / "data"
    (data / "index").mkdir(parents=True)
    # An index from a few detections (fast), and labels imported from CSV, then exported as DSA JSON.
    cells = tmp_path / "cells.csv"
    cells.write_text("x,y\n1000,1000\n1100,1050\n1200,1100\n1300,900\n")
    subprocess.run([HALI, "ingest", SLIDE, "--detections", str(cells), "--out", str(data / "index")], check=True, capture_output=True)
    labels = tmp_path / "labels.csv"
    labels.write_text("x,y,class\n1000,1000,inflammatory\n1100,1050,other\n1200,1100,other\n")
    subprocess.run([HALI, "import", SLIDE, "--task", "til", "--annotator", "alice", "--format", "csv", str(labels),
                    "--data-dir", str(data)], check=True, capture_output=True)
    out = tmp_path / "labels.dsa.json"
    subprocess.run([HALI, "export", SLIDE, "--task", "til", "--annotator", "alice", "--format", "dsa", "--out", str(out),
                    "--data-dir", str(data)], check=True, capture_output=True)
    document = json.loads(out.read_text())
    jsonschema.validate(document, schema)  # raises with the failing path on any violation
    assert len(document["elements"]) == 3, f"validated with {wheel}"
