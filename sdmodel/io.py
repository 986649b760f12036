"""Run directories: results written atomically, with a manifest to reproduce them.

A run directory holds ``results.csv`` (column ``t`` then the variables),
``results.parquet``, ``residuals.csv`` (the stock-flow residual series) and
``manifest.json`` (model and spec hash, parameters, solver settings, seed,
package versions, command line, time).  It is built in a temporary sibling
folder and renamed into place, so an interrupted write leaves either the
previous complete directory or none, never a half-written one.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import sys
import tempfile
import uuid
from importlib import metadata
from pathlib import Path
from typing import Callable, Mapping

from . import __version__
from .errors import SpecError
from .results import SimulationResult
from .spec import Model

_PACKAGES = ("numpy", "scipy", "sympy", "pandas", "pyarrow", "xarray", "pyyaml", "networkx")


def created(timestamp: float | None = None) -> str:
    """The ``created`` time of a manifest: now (or a POSIX ``timestamp``), UTC, to the second."""
    when = _dt.datetime.now(_dt.timezone.utc) if timestamp is None else \
        _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc)
    return when.isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions of Python, sdmodel and the libraries results depend on."""
    out = {"python": platform.python_version(), "sdmodel": __version__}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def resolve_named(path_or_name: str | os.PathLike, folder: str, builtin: Path, what: str) -> Path:
    """A config file from a path or a name: ``japan`` -> ``<folder>/japan.yaml`` under the working
    directory, else in the checkout's ``builtin`` folder."""
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    for d in (Path.cwd() / folder, builtin):
        if (d / f"{path_or_name}.yaml").is_file():
            return d / f"{path_or_name}.yaml"
    names = sorted(f.stem for f in builtin.glob("*.yaml"))
    raise SpecError(f"no {what} {str(path_or_name)!r} (a .yaml file, or one of: {', '.join(names) or 'none'})")


def write_atomic_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary sibling, flushed, then renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def parquet_bytes(frame) -> bytes:
    """A DataFrame as Parquet bytes (index dropped), for :func:`write_atomic_file`."""
    import io as _io
    buf = _io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def png_bytes(fig, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes, closing it, for :func:`write_atomic_file`."""
    import io as _io

    import matplotlib.pyplot as plt
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def write_atomic_dir(out_dir: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Create ``out_dir`` atomically: ``fill(tmp)`` writes into a temporary sibling, then it is swapped in.

    If ``out_dir`` exists it is replaced only after the new one is complete.
    """
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        fill(tmp)
        for f in tmp.iterdir():  # flush file contents before the rename makes them visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def manifest(model: Model, result: SimulationResult, *, command: list[str] | None = None,
             seed: int | None = None, extra: Mapping | None = None) -> dict:
    """The manifest of one run: everything needed to reproduce it."""
    return {
        "kind": "run",
        "model": model.name,
        "model_file": model.path or model.source,
        "scenario": model.scenario or None,
        "scenario_file": model.scenario_file or None,
        "spec_hash": model.spec_hash,
        "parameters": dict(result.params),
        "solver": dict(result.solver),
        "seed": seed,
        "success": result.success,
        "message": result.message,
        "max_relative_residual": result.max_residual,
        "outputs": list(result.names),
        "versions": versions(),
        "command": command if command is not None else sys.argv,
        "created": created(),
        **(dict(extra) if extra else {}),
    }


def write_run(out_dir, model: Model, result: SimulationResult, *, command=None, seed=None, extra=None,
              also: Callable[[Path], None] | None = None) -> Path:
    """Write one run's results, residuals and manifest into ``out_dir`` atomically.

    ``also(tmp)`` may add files (e.g. a figure) before the directory is swapped in.
    """
    df = result.to_frame()
    man = manifest(model, result, command=command, seed=seed, extra=extra)

    def fill(tmp: Path):
        df.to_csv(tmp / "results.csv", float_format="%.17g")
        df.to_parquet(tmp / "results.parquet")
        result.residual_frame().to_csv(tmp / "residuals.csv", float_format="%.6g")
        (tmp / "manifest.json").write_text(json.dumps(man, indent=2, default=str) + "\n")
        if also is not None:
            also(tmp)

    return write_atomic_dir(out_dir, fill)
