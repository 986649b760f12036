"""The built wheel, installed in a fresh virtual environment, runs a smoke version of every command of the README
from an empty directory (issue 27): the models, calibration configs with their data, and studies must come from the
wheel, and its declared dependencies must be enough.

The wheel is built with the test environment's hatchling (``pip wheel --no-build-isolation``: no download) and
installed, with the dependencies pip resolves for it from the package index (``pip config list``), into a new
``python -m venv`` outside the source tree (no ``--system-site-packages``). Every command runs through that
environment's own ``sdmodel`` console script, from an empty folder, with ``SDMODEL_CACHE_DIR`` in the tmp folder.
Where no package index is reachable the test fails saying so; ``SDMODEL_WHEEL_OFFLINE=1`` asks instead for the old
mode: the wheel alone installed with ``pip install --target`` into a folder put first on PYTHONPATH, its
dependencies the test environment's (no console script, no ``pip check``).
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = os.environ.get("SDMODEL_WHEEL_OFFLINE", "") not in ("", "0")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hatchling") is None, reason="needs hatchling (pip install -e '.[test]') to build"
)


def _fail_install(what, out):
    tail = out if isinstance(out, str) else (out.stdout + out.stderr)[-3000:]
    pytest.fail(
        f"{what}: is a package index reachable (pip config list)? SDMODEL_WHEEL_OFFLINE=1 installs the wheel alone "
        f"with --target against this environment's packages instead.\n{tail}",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(base / "dist")], check=True, cwd=base
    )
    (wheel,) = (base / "dist").glob("sdmodel-*.whl")
    # as a user's shell: nothing of this checkout or of the test environment on the path
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SDMODEL_ENGINE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["SDMODEL_CACHE_DIR"] = str(base / "cache")  # and the fused kernel (numba is a dependency)
    if OFFLINE:
        site = base / "site"
        subprocess.run(
            [*pip, "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)], check=True, cwd=base
        )
        env["PYTHONPATH"] = str(site)
        python, command = Path(sys.executable), [sys.executable, "-m", "sdmodel.cli"]
    else:
        venv = base / "venv"
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], cwd=base, capture_output=True, text=True)
        if made.returncode:
            pytest.fail(
                f"could not create a virtual environment (python -m venv):\n{made.stderr[-2000:]}", pytrace=False
            )
        python = venv / "bin" / "python"
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.update(VIRTUAL_ENV=str(venv), PYTHONNOUSERSITE="1")
        try:
            got = subprocess.run(
                [python, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-compile", str(wheel)],
                cwd=base,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
        except subprocess.TimeoutExpired as e:
            _fail_install("pip took over 15 minutes to install the wheel's dependencies", str(e))
        if got.returncode:
            _fail_install("pip could not install the wheel with its dependencies into a fresh virtual environment", got)
        command = [str(venv / "bin" / "sdmodel")]
    work = base / "empty"
    work.mkdir()

    def run(*args):
        return subprocess.run([*command, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)

    def sdmodel(*args):
        out = run(*args)
        assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-3000:])
        return out.stdout

    def fails(*args):
        out = run(*args)
        assert out.returncode == 1, (args, out.returncode, out.stdout[-2000:], out.stderr[-3000:])
        return out

    yield SimpleNamespace(base=base, work=work, env=env, python=python, sdmodel=sdmodel, fails=fails)
    shutil.rmtree(base / "venv", ignore_errors=True)  # 0.8 GB; pytest keeps the last three tmp folders


def test_the_wheel_is_what_runs(installed):
    i = installed
    assert i.sdmodel("--version").startswith("sdmodel ")
    show = (
        "import sdmodel, numpy, sys, sysconfig; "
        "print(sdmodel.__file__, numpy.__file__, sysconfig.get_paths()['purelib'], "
        "sys.prefix != sys.base_prefix, sep='\\n')"
    )
    where = subprocess.run([i.python, "-c", show], cwd=i.work, text=True, capture_output=True, env=i.env, check=True)
    where = where.stdout.split("\n")
    package, numpy, purelib, in_venv = where[:4]
    assert not Path(package).is_relative_to(ROOT), package
    if OFFLINE:
        assert Path(package).is_relative_to(i.base / "site"), package
        return
    venv = i.base / "venv"
    # the console script is the venv's, its package and dependencies come from the venv's site-packages
    assert str(venv / "bin" / "python") in (venv / "bin" / "sdmodel").read_text()[:1000]
    assert in_venv == "True" and Path(purelib).is_relative_to(venv), where
    assert Path(package).is_relative_to(purelib) and Path(numpy).is_relative_to(purelib), where
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()


@pytest.mark.skipif(OFFLINE, reason="SDMODEL_WHEEL_OFFLINE: the dependencies are the test environment's")
def test_the_declared_dependencies_are_consistent(installed):
    out = subprocess.run(
        [installed.python, "-m", "pip", "--disable-pip-version-check", "check"],
        cwd=installed.base,
        env=installed.env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_command_runs_from_the_wheel_in_an_empty_folder(installed):
    work, sdmodel, fails = installed.work, installed.sdmodel, installed.fails
    # the README's first command: the default model and scenario, into runs/bsr-japan-<time>/, saying where
    said = sdmodel("run")
    (default,) = (work / "runs").iterdir()
    assert re.fullmatch(r"bsr-japan-[0-9-]+", default.name), default.name
    assert str(default) in said, said
    for name in ("results.csv", "results.parquet", "residuals.csv", "manifest.json", "figure.png"):
        assert (default / name).stat().st_size > 0, name
    assert "report.html" in sdmodel("report", str(default.relative_to(work)))
    checked = sdmodel(*"check bsr".split())
    assert "all rows and columns balance" in checked and " 0 failed" in checked and "proven" in checked
    assert "all rows and columns balance" in sdmodel(*"check reg".split())
    assert "all rows and columns balance" in sdmodel(*"check bsr_china".split())
    sdmodel(*"run bsr --scenario japan --out run-japan".split())
    assert (work / "run-japan" / "figure.png").stat().st_size > 0
    sdmodel(*"run bsr_china --scenario china --no-figure --out run-china".split())
    sdmodel(*"run bsr --scenario china --no-figure --out run-bsr-china".split())
    sdmodel(*"report run-japan".split())
    assert (work / "run-japan" / "report.html").stat().st_size > 0
    sdmodel(*"export pc --to vensim --out pc.mdl".split())
    assert (work / "pc.mdl").read_text().strip()
    sdmodel(*"export bsr --scenario japan --to xmile --out models_out/".split())
    assert (work / "models_out" / "bsr-japan.xmile").read_text().strip()
    assert "Change in" in sdmodel(*"tables bsr".split())
    listed = sdmodel("models")
    assert "growth" in listed and "scenarios:" in listed and "japan" in listed
    sdmodel(*"calibrate china --maxiter 2 --popsize 2 --local-nfev 0 --no-progress --out cal".split())
    sdmodel(*"calibrate japan --maxiter 2 --popsize 2 --local-nfev 0 --no-progress --out cal-japan".split())
    sdmodel(*"estimate china --restarts 1 --maxiter 2 --walkers 76 --steps 44 --burn 4 --no-progress --out est".split())
    sdmodel(
        *"estimate japan --restarts 1 --maxiter 2 --walkers 30 --steps 44 --burn 4 --no-progress".split(),
        "--out",
        "est-japan",
    )
    sdmodel(*"validate china --origins 2017 --restarts 1 --maxiter 2 --no-progress --out val".split())
    sdmodel(*"validate japan --origins 2010 --restarts 1 --maxiter 2 --no-progress --out val-japan".split())
    sdmodel(*"sensitivity japan --method sobol -N 2 --no-progress --out sens".split())
    sdmodel(*"sequence japan --no-progress --out seq".split())
    sdmodel(*"sequence japan --posterior est-japan --draws 2 --no-progress --out seq-post".split())
    for d in ("cal", "cal-japan", "est", "est-japan", "val", "val-japan", "sens", "seq", "seq-post"):
        assert (work / d / "manifest.json").is_file(), d
    # an error is one line on stderr, exit code 1
    error = fails("run", "no-such-model")
    assert error.stderr.startswith("sdmodel: error:") and len(error.stderr.strip().splitlines()) == 1, error.stderr
    # nothing was written next to the installed package or into this checkout
    assert sorted(p.name for p in work.iterdir()) == sorted(
        [
            "runs",
            "run-japan",
            "run-china",
            "run-bsr-china",
            "pc.mdl",
            "models_out",
            "cal",
            "cal-japan",
            "est",
            "est-japan",
            "val",
            "val-japan",
            "sens",
            "seq",
            "seq-post",
        ]
    )


def test_the_readme_model_file_is_checked_and_a_flipped_sign_named(installed, tmp_path):
    """The README's model file (SIM) balances; with the firms' wages entry flipped, ``sdmodel check`` exits 1 with
    the error the README shows."""
    block = next(b for b in (ROOT / "README.md").read_text().split("```")[1::2] if b.startswith("yaml\nname: sim\n"))
    (tmp_path / "sim.yaml").write_text(block.removeprefix("yaml\n"))
    checked = installed.sdmodel("check", str(tmp_path / "sim.yaml"))
    assert "all rows and columns balance" in checked and "proven" in checked
    wages = "Wages: {households: +W, firms: -W}"
    assert wages in block
    (tmp_path / "flipped.yaml").write_text(block.removeprefix("yaml\n").replace(wages, wages.replace("-W", "+W")))
    out = installed.fails("check", str(tmp_path / "flipped.yaml"))
    said = out.stdout + out.stderr
    assert "transactions row 'Wages', column 'firms' (entry W, try -W) looks sign-flipped" in said, said
