#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the ready-made segments
(queries/segments/*.json) and the conformance cases (../shared/conformance/cases.json):
fuzz/corpus/definition/ (definitions, sets, and the small parsers' texts) and
fuzz/corpus/request_bodies/ (a route byte, then a preview, refresh or put body).
Run from the repository root: python3 fuzz/seed_corpus.py"""
import hashlib, json, pathlib, sys

root = pathlib.Path(__file__).resolve().parent.parent
shared = next(p for p in [root / "../shared", root / "../../shared"] if (p / "conformance").exists())
definitions = []
for f in sorted((root / "queries/segments").glob("*.json")):
    definitions.append(json.loads(f.read_text()))
cases = json.loads((shared / "conformance/cases.json").read_text())
for scenario in cases["scenarios"]:
    definitions.extend(scenario["segments"])

def write(folder, data):
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    (folder / name).write_bytes(data)

definition_dir = root / "fuzz/corpus/definition"
bodies_dir = root / "fuzz/corpus/request_bodies"
for d in definitions:
    text = json.dumps(d, ensure_ascii=False).encode()
    write(definition_dir, text)
    write(bodies_dir, b"\x00" + json.dumps({"definition": d, "as_of": "2025-11-28"}, ensure_ascii=False).encode())
    write(bodies_dir, b"\x02" + text)
for scenario in cases["scenarios"]:
    write(definition_dir, json.dumps(scenario["segments"], ensure_ascii=False).encode())
    write(bodies_dir, b"\x00" + json.dumps({"definition": scenario["segments"][0],
        "as_of": [scenario["as_of"], "2025-11-01"], "sample": 5}, ensure_ascii=False).encode())
    write(bodies_dir, b"\x01" + json.dumps({"as_of": scenario["as_of"]}).encode())
for text in ["2025-11-28", "2025-11-28T12:30:00.5+03:00", "30d", "1w", "37.535", "-0.00",
             "hourly", "nightly", "*/15 9-17 * * 1-5", "0 3 * * *"]:
    write(definition_dir, text.encode())
write(bodies_dir, b"\x01")
print(f"{len(list(definition_dir.iterdir()))} definition seeds, {len(list(bodies_dir.iterdir()))} request body seeds")
