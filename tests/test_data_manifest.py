"""kdas_lab.data.manifest: the one home of kdas_data.json; no import circle among the data modules."""
import ast
import json
from pathlib import Path

import pytest

from kdas_lab.data.io import DataError
from kdas_lab.data.manifest import MANIFEST, has_manifest, is_synthetic, manifest_path, read_manifest, write_manifest

DATA = Path(__file__).resolve().parents[1] / "kdas_lab" / "data"


def test_read_write_and_kind(tmp_path):
    assert MANIFEST == "kdas_data.json" and manifest_path(tmp_path) == tmp_path / MANIFEST
    assert read_manifest(tmp_path) == {} and not has_manifest(tmp_path) and not is_synthetic(tmp_path)
    write_manifest(tmp_path, {"kind": "synthetic", "n_train": 2})
    assert has_manifest(tmp_path) and is_synthetic(str(tmp_path))
    assert json.loads((tmp_path / MANIFEST).read_text()) == {"kind": "synthetic", "n_train": 2}
    write_manifest(tmp_path, {"kind": "pranet"})
    assert not is_synthetic(tmp_path)
    (tmp_path / MANIFEST).write_text("[1]")
    with pytest.raises(DataError, match="corrupt"):
        read_manifest(tmp_path)


def test_the_file_name_is_typed_once():
    typed = [p.name for p in DATA.glob("*.py") if '"kdas_data.json"' in p.read_text()]
    assert typed == ["manifest.py"]


def test_no_import_circle_among_the_data_modules_counting_function_local_imports():
    graph = {}
    for p in DATA.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kdas_lab.data."):
                deps.add(node.module.split(".")[2])
        graph[p.stem] = deps

    def reaches(start, goal, seen=()):
        return any(d == goal or (d not in seen and reaches(d, goal, (*seen, d))) for d in graph.get(start, ()))

    assert [m for m in graph if reaches(m, m)] == []
