"""The built wheel, installed outside the source tree, runs a smoke version of every command from an empty
directory (issue 27): the models, calibration configs with their data, and studies must come from the wheel.

The wheel is built with the test environment's hatchling (``pip wheel --no-build-isolation``: no download)
and installed with ``pip install --target`` into a folder that goes first on PYTHONPATH, so that the
package imported is the wheel's, not this checkout's; its dependencies are the test environment's.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hatchling") is None, reason="needs hatchling (pip install -e '.[test]') to build"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(base / "dist")],
                   check=True, cwd=base)
    (wheel,) = (base / "dist").glob("sdmodel-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", str(base / "site"), str(wheel)],
                   check=True, cwd=base)
    work = base / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(base / "site"), "SDMODEL_CACHE_DIR": str(base / "cache")}
    env.pop("SDMODEL_ENGINE", None)  # as a user runs it: the fused kernel where numba is installed

    def sdmodel(*args):
        out = subprocess.run([sys.executable, "-m", "sdmodel.cli", *args], cwd=work, env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-3000:])
        return out.stdout

    return base, work, sdmodel


def test_the_wheel_is_what_runs(installed):
    base, work, sdmodel = installed
    where = sdmodel("--version")
    assert where.startswith("sdmodel ")
    out = subprocess.run([sys.executable, "-c", "import sdmodel; print(sdmodel.__file__)"], cwd=work, text=True,
                         capture_output=True, env={**os.environ, "PYTHONPATH": str(base / "site")}, check=True)
    assert Path(out.stdout.strip()).is_relative_to(base / "site"), out.stdout


def test_every_command_runs_from_the_wheel_in_an_empty_folder(installed):
    _, work, sdmodel = installed
    assert "all rows and columns balance" in sdmodel("check", "reg")
    assert "all rows and columns balance" in sdmodel("check", "bsr_china")
    sdmodel("run", "bsr", "--scenario", "japan", "--out", "run-japan")
    assert (work / "run-japan" / "figure.png").stat().st_size > 0
    sdmodel("run", "bsr_china", "--scenario", "china", "--no-figure", "--out", "run-china")
    sdmodel("report", "run-japan")
    assert (work / "run-japan" / "report.html").stat().st_size > 0
    sdmodel("export", "pc", "--to", "vensim", "--out", "pc.mdl")
    assert (work / "pc.mdl").read_text().strip()
    assert "Change in" in sdmodel("tables", "bsr")
    assert "growth" in sdmodel("models")
    sdmodel("calibrate", "china", "--maxiter", "2", "--popsize", "2", "--local-nfev", "0", "--no-progress",
            "--out", "cal")
    sdmodel("estimate", "china", "--restarts", "1", "--maxiter", "2", "--walkers", "76", "--steps", "44",
            "--burn", "4", "--no-progress", "--out", "est")
    sdmodel("validate", "china", "--origins", "2017", "--restarts", "1", "--maxiter", "2", "--no-progress",
            "--out", "val")
    sdmodel("sensitivity", "japan", "-N", "2", "--no-progress", "--out", "sens")
    sdmodel("sequence", "japan", "--no-progress", "--out", "seq")
    for d in ("cal", "est", "val", "sens", "seq"):
        assert (work / d / "manifest.json").is_file(), d
    # nothing was written next to the installed package or into this checkout
    assert sorted(p.name for p in work.iterdir()) == sorted(
        ["run-japan", "run-china", "pc.mdl", "cal", "est", "val", "sens", "seq"]
    )
