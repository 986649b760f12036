"""What a wheel ships: every folder a command reads at run time, in the layout their files refer to."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_models_configs_and_studies_side_by_side():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = cfg["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert shipped == {name: f"sdmodel/_shipped/{name}" for name in ("models", "calibration", "studies")}


def test_every_path_a_shipped_config_names_stays_inside_what_is_shipped():
    """Configs refer to their model, data and penalty by relative paths (``../models/bsr``): in the wheel
    those must land in the shipped folders too, so resolve them and check where they point."""
    roots = [(ROOT / d).resolve() for d in ("models", "calibration", "studies")]
    for cfg in [*(ROOT / "calibration").glob("*.yaml"), *(ROOT / "studies").glob("*.yaml")]:
        d = yaml.safe_load(cfg.read_text())
        for key in ("model", "data", "penalty"):
            v = d.get(key) if isinstance(d, dict) else None
            if isinstance(v, str) and ("/" in v or v.endswith((".csv", ".py"))):
                target = (cfg.parent / v.split(":")[0]).resolve()
                assert target.exists(), f"{cfg.name}: {key} {v} does not exist"
                assert any(r == target or r in target.parents for r in roots), f"{cfg.name}: {key} {v} is not shipped"
