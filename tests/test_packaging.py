"""environment.yml (pins) and pyproject.toml (ranges) must name the same packages."""
import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_packages() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_name(r): r for r in reqs}


def _environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r for r in pip if not r.startswith("-e")}


def test_same_package_sets():
    assert set(_pyproject_packages()) == set(_environment_pins())


def test_environment_pins_exactly_and_fit_the_ranges():
    from packaging.specifiers import SpecifierSet

    ranges = _pyproject_packages()
    for name, pin in _environment_pins().items():
        version = pin.split("==", 1)[1] if "==" in pin else None
        assert version, f"environment.yml must pin {name} with ==, got {pin!r}"
        spec = SpecifierSet(ranges[name][len(_name(ranges[name])):].split(";")[0].strip() or "")
        assert spec.contains(version), f"{name}=={version} outside pyproject range {ranges[name]!r}"


def test_torch_pins_match_the_makefile():
    make = (ROOT / "Makefile").read_text()
    pins = _environment_pins()
    assert pins["torch"] in make and pins["torchvision"] in make


def test_python_version():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
