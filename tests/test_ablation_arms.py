"""Arms, presets, the YAML grid format and the CLI's settings precedence."""
import argparse
from pathlib import Path

import pytest
import yaml

from kdas_lab.ablation.arms import ARMS, PRESETS, Arm, get_arm, load_grid, preset_grid, seed_list
from kdas_lab.cli import ablate as cli_ablate
from kdas_lab.config import Config

REPO = Path(__file__).resolve().parents[1]


def test_unknown_arm_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown arm 'kdass'; valid arms: no_kd, kdas, .*fitnet"):
        get_arm("kdass")


@pytest.mark.parametrize("name, method, field, value", [
    ("no_kd", "none", None, None),
    ("kdas_at_only", "kdas", "extra", {"sgm_weight": 0.0}),
    ("kdas_sgm_only", "kdas", "extra", {"at_weight": 0.0}),
    ("kdas_T4", "kdas", "temperature", 4.0),
    ("kdas_alpha0.1", "kdas", "alpha", 0.1),
    ("fitnet", "fitnet", None, None),
])
def test_arm_config(name, method, field, value):
    base = Config.from_profile("fast", extra={"keep": 1})
    cfg = get_arm(name).config(base, seed=7)
    assert cfg.method == method and cfg.seed == 7
    if field == "extra":
        assert cfg.extra == {"keep": 1, **value}
    elif field:
        assert getattr(cfg, field) == value
    assert base.seed == 0 and base.extra == {"keep": 1}  # the base is not mutated


def test_arm_rejects_reserved_or_unknown_fields():
    with pytest.raises(ValueError, match="cannot override"):
        Arm("x", "kdas", {"seed": 3})
    with pytest.raises(ValueError, match="cannot override"):
        Arm("x", "kdas", {"temprature": 3})


def test_presets_use_registered_arms_and_no_kd_first():
    for name in PRESETS:
        g = preset_grid(name)
        assert g.arms[0].name == "no_kd" and all(a.name in ARMS for a in g.arms)
    assert [a.name for a in preset_grid("fast", seeds=[3, 5]).arms] == ["no_kd", "kdas"]
    assert preset_grid("fast", seeds=[3, 5]).seeds == [3, 5]
    with pytest.raises(ValueError, match="unknown preset"):
        preset_grid("huge")


@pytest.mark.parametrize("seeds, expected", [(3, [0, 1, 2]), ([4, 1], [4, 1])])
def test_seed_list(seeds, expected):
    assert seed_list(seeds) == expected


@pytest.mark.parametrize("seeds", [0, [], [1, 1], True])
def test_seed_list_rejects(seeds):
    with pytest.raises(ValueError):
        seed_list(seeds)


def test_example_grid_parses_with_sweeps():
    g = load_grid(REPO / "configs" / "ablation_example.yaml")
    names = [a.name for a in g.arms]
    assert names[:4] == ["no_kd", "kdas", "kdas_at_only", "kdas_sgm_only"]
    assert "kdas_T=1.0" in names and "kdas_alpha=0.5" in names
    by = {a.name: a for a in g.arms}
    assert by["kdas_T=4.0"].overrides == {"temperature": 4.0} and by["kdas_T=4.0"].method == "kdas"
    assert g.seeds == [0, 1, 2] and g.profile == "course" and g.overrides["image_size"] == 128


@pytest.mark.parametrize("data, match", [
    ({"arms": ["no_kd", "nope"]}, r"arms\[1\].*unknown arm 'nope'"),
    ({"arms": [{"name": "x"}]}, "needs a 'method'"),
    ({"arms": [{"name": "x", "method": "kdas", "bogus": 1}]}, "unknown keys"),
    ({"arms": ["no_kd"], "sets": {}}, "unknown top-level keys"),
    ({"arms": ["no_kd"], "set": {"seed": 1}}, "reserved"),
    ({"arms": ["no_kd", "no_kd"]}, "duplicate arm names"),
    ({"arms": [{"name": "t", "method": "kdas", "sweep": {"alpha": 0.1}}]}, "non-empty list"),
    ({"arms": "no_kd"}, "'arms' must be a list"),
    ({"profile": "quick", "arms": ["no_kd"]}, "unknown profile"),
])
def test_bad_grids_name_the_file(tmp_path, data, match):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=match) as info:
        load_grid(path)
    assert str(path) in str(info.value)


def test_missing_or_broken_grid_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_grid(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("arms: [no_kd\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_grid(tmp_path / "bad.yaml")


def _args(argv):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    cli_ablate.register(sub)
    return p.parse_args(["ablate", *argv])


def test_cli_settings_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("KDAS_DATA_DIR", raising=False)
    grid = tmp_path / "g.yaml"
    grid.write_text(yaml.safe_dump({"profile": "fast", "seeds": 2, "set": {"image_size": 96, "epochs": 5},
                                    "arms": ["no_kd", {"name": "k", "method": "kdas", "set": {"alpha": 0.2}}]}))
    g, cfg = cli_ablate.build_grid_and_config(_args(["--grid", str(grid), "--epochs", "1", "--seeds", "0,4"]))
    assert cfg.profile == "fast" and cfg.image_size == 96 and cfg.epochs == 1  # flag beats grid
    assert g.seeds == [0, 4]
    g, _ = cli_ablate.build_grid_and_config(_args(["--grid", str(grid), "--arms", "k,kd"]))
    assert [a.name for a in g.arms] == ["k", "kd"] and g.arms[0].overrides == {"alpha": 0.2}
    with pytest.raises(ValueError, match="exactly one of --preset"):
        cli_ablate.build_grid_and_config(_args([]))
    with pytest.raises(ValueError, match="unknown arm"):
        cli_ablate.build_grid_and_config(_args(["--preset", "fast", "--arms", "no_kd,zzz"]))
    with pytest.raises(SystemExit):
        _args(["--preset", "fast", "--seeds", "0"])


def test_kdas_lab_ablate_unknown_arm_exits_2(tmp_path, capsys):
    from kdas_lab.cli import main

    rc = main(["ablate", "--preset", "fast", "--arms", "no_kd,bogus", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "unknown arm 'bogus'; valid arms: no_kd, kdas" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
