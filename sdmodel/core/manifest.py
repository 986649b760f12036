"""Run-directory manifests: one frozen type per kind, with a schema version and one reader.

Every command that writes a directory (``run``, ``calibrate``, ``sensitivity``,
``sequence``) describes it in ``manifest.json``: what was run, on which model
and data (hashes), with which settings, package versions, command line and
time. The types here are the only place those keys are named:
:func:`read_manifest` returns the kind's type (:class:`RunManifest`,
:class:`CalibrationManifest`, :class:`SensitivityManifest`,
:class:`SequenceManifest`), which the report, ``sdmodel runs`` and
``sdmodel diff`` read by attribute; writers build one and write
``manifest.to_json()`` (through :func:`sdmodel.core.files.write_atomic_file`).

Every manifest also records where its results come from (:func:`provenance`: the sdmodel
version, the git commit of sdmodel's checkout when it runs from one, and the sha256 of every
input file: model, scenario, parameter, data, calibration and study files) and the warnings a
reader of its results must know (``warnings``: a run beyond the data of its series, an unbalanced start).

Keys a manifest holds that its type does not declare (written by another
version) are kept in ``extra`` and written back unchanged. A manifest whose
``schema`` is newer than this version's is refused with a clear error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sdmodel import __version__
from sdmodel.core.errors import ManifestError
from sdmodel.core.inputs import decode_text, read_input

#: The version of the manifest layout this sdmodel writes (and the newest it reads).
SCHEMA_VERSION = 1
FILE = "manifest.json"
#: Manifests are small: a larger file is not one of ours.
MAX_MANIFEST_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Manifest:
    """What every manifest records. Subclasses add their kind's fields."""

    kind: ClassVar[str] = ""
    command: tuple[str, ...] = ()
    created: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    #: where the results come from: see :func:`provenance`
    provenance: Mapping[str, Any] = field(default_factory=dict)
    #: what a reader of the results must know, one line each (a run beyond the data of its series, an
    #: unbalanced start that the model allows)
    warnings: tuple[str, ...] = ()
    #: keys of the file this type does not declare, kept as read
    extra: Mapping[str, Any] = field(default_factory=dict)

    # -- what `sdmodel runs` shows -------------------------------------------
    @property
    def what(self) -> str:
        """The model (and scenario) or the study the directory is about."""
        return ""

    @property
    def headline(self) -> str:
        """One line of its result."""
        return ""

    # -- JSON --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The manifest as written: ``kind`` and ``schema`` first, then the fields, then ``extra``."""
        out: dict[str, Any] = {"kind": self.kind, "schema": self.schema}
        for f in dataclasses.fields(self):
            if f.name not in ("extra", "schema"):
                v = getattr(self, f.name)
                out[f.name] = list(v) if isinstance(v, tuple) else v
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_jsonable) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> Manifest:
        """The manifest of ``data`` as the type of its ``kind`` (``run`` when it names none)."""
        if not isinstance(data, Mapping):
            raise ManifestError(f"{source}: expected a JSON object, got {type(data).__name__}")
        kind = str(data.get("kind", "run"))
        typ = KINDS.get(kind)
        if typ is None:
            raise ManifestError(f"{source}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        schema = data.get("schema", SCHEMA_VERSION)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise ManifestError(
                f"{source}: schema {schema!r} is newer than this sdmodel reads "
                f"({SCHEMA_VERSION}); upgrade sdmodel to read it"
            )
        known = {f.name for f in dataclasses.fields(typ)} - {"extra"}
        kw: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) and _is_tuple_field(typ, k) else v)
            for k, v in data.items()
            if k in known
        }
        extra = {k: v for k, v in data.items() if k not in known and k != "kind"}
        try:
            return typ(**kw, extra=extra)
        except TypeError as err:  # a field of the wrong shape
            raise ManifestError(f"{source}: {err}") from None


def _is_tuple_field(typ, name: str) -> bool:
    f = {f.name: f for f in dataclasses.fields(typ)}[name]
    return str(f.type).startswith("tuple")


def _jsonable(v):
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "tolist"):  # numpy scalars and arrays
        return v.tolist()
    if isinstance(v, Mapping):
        return dict(v)
    return str(v)


@dataclass(frozen=True)
class RunManifest(Manifest):
    """``sdmodel run`` / :func:`sdmodel.report.rundirs.write_run`: one simulation."""

    kind: ClassVar[str] = "run"
    model: str = ""
    model_file: str = ""
    scenario: str | None = None
    scenario_file: str | None = None
    spec_hash: str = ""
    parameters: Mapping[str, float] = field(default_factory=dict)
    solver: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    success: bool = False
    message: str = ""
    max_relative_residual: float | None = None
    outputs: tuple[str, ...] = ()

    @property
    def what(self) -> str:
        return self.model + (f"/{self.scenario}" if self.scenario else "")

    @property
    def headline(self) -> str:
        r = self.max_relative_residual
        return (
            f"max residual {r if isinstance(r, (int, float)) else math.nan:.1e}, "
            f"{'ok' if self.success else 'FAILED'}"
        )  # nan where the manifest does not say


@dataclass(frozen=True)
class FitManifest(Manifest):
    """What every fit of a model to data records (calibration, estimation, validation)."""

    model: str = ""
    scenario: str | None = None
    config: str = ""
    config_hash: str = ""
    data_hash: str = ""
    spec_hash: str = ""

    @property
    def what(self) -> str:
        return Path(self.config).stem if self.config else self.model


@dataclass(frozen=True)
class CalibrationManifest(FitManifest):
    """``sdmodel calibrate``: an estimation of a model's parameters against data."""

    kind: ClassVar[str] = "calibration"
    parameters: Mapping[str, float] = field(default_factory=dict)
    window: tuple[float, ...] = ()
    seed: int | None = None
    solver: Mapping[str, Any] = field(default_factory=dict)
    search: Mapping[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        return f"window {list(self.window)}, seed {self.seed}"


@dataclass(frozen=True)
class SensitivityManifest(Manifest):
    """``sdmodel sensitivity``: Sobol or Morris indices of a study."""

    kind: ClassVar[str] = "sensitivity"
    study: str = ""
    study_hash: str = ""
    spec_hash: str = ""
    key: str = ""
    method: str = ""
    N: int = 0
    seed: int | None = None
    runs: int = 0
    problem: Mapping[str, Any] = field(default_factory=dict)
    outcomes: Mapping[str, Any] = field(default_factory=dict)  # name -> what it measures
    solver: Mapping[str, Any] = field(default_factory=dict)
    factors: Mapping[str, Any] = field(default_factory=dict)
    chunks: Mapping[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
    max_relative_residual: float | None = None

    @property
    def what(self) -> str:
        return Path(self.study).stem

    @property
    def headline(self) -> str:
        return f"{self.method} N={self.N}, {self.runs} runs"


@dataclass(frozen=True)
class SequenceManifest(Manifest):
    """``sdmodel sequence``: a grid of policy rules of a study, ranked."""

    kind: ClassVar[str] = "sequence"
    study: str = ""
    study_hash: str = ""
    spec_hash: str = ""
    key: str = ""
    designs: Mapping[str, Any] = field(default_factory=dict)
    solver: Mapping[str, Any] = field(default_factory=dict)
    outcomes: Mapping[str, Any] = field(default_factory=dict)
    wall_s: float | None = None

    @property
    def what(self) -> str:
        return Path(self.study).stem

    @property
    def headline(self) -> str:
        return f"designs: {', '.join(self.designs)}"


@dataclass(frozen=True)
class EstimationManifest(FitManifest):
    """``sdmodel estimate``: a Bayesian estimation (modes, posterior, predictive bands)."""

    kind: ClassVar[str] = "estimation"
    #: posterior medians of the model parameters (what --install writes)
    parameters: Mapping[str, float] = field(default_factory=dict)
    window: tuple[float, ...] = ()
    seed: int | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    converged: bool | None = None
    best_log_posterior: float | None = None
    wall_s: float | None = None

    @property
    def headline(self) -> str:
        ok = {True: "converged", False: "NOT converged", None: "?"}[self.converged]
        return f"window {list(self.window)}, seed {self.seed}, {ok}"


@dataclass(frozen=True)
class ValidationManifest(FitManifest):
    """``sdmodel validate``: rolling-origin out-of-sample forecasts against naive ones."""

    kind: ClassVar[str] = "validation"
    origins: tuple[float, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: per target: the model's RMSE over the best naive RMSE, all horizons (below 1: skill)
    skill: Mapping[str, float] = field(default_factory=dict)
    wall_s: float | None = None

    @property
    def headline(self) -> str:
        return f"origins {', '.join(f'{o:g}' for o in self.origins)}"


#: kind -> manifest type: the registry every reader dispatches on.
KINDS: dict[str, type[Manifest]] = {
    t.kind: t
    for t in (
        RunManifest,
        CalibrationManifest,
        SensitivityManifest,
        SequenceManifest,
        EstimationManifest,
        ValidationManifest,
    )
}


# -- provenance ------------------------------------------------------------------
#: sdmodel's own source folder: a git checkout's commit is recorded only where this folder is tracked by it
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # sdmodel/, this file being sdmodel/core/manifest.py
#: git settings from the environment that would point git at another repository than the folder asked about
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_CEILING_DIRECTORIES")


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_sha256(data: Any) -> str:
    """The sha256 (hex) of a config's parsed content (canonical JSON, keys sorted): what the config says, not how
    its file is written, so that a comment, the order of keys or a reformatting does not make a long study or
    estimation stored under it look like another one, nor a parameter file's provenance stale.

    >>> content_sha256({"a": 1, "b": [1, 2]}) == content_sha256({"b": [1, 2], "a": 1})
    True
    """
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class FieldHash:
    """A sha256 over fields put in order: ``put("name", *parts)`` adds one field, each part as text (a string
    as it is, anything else by its ``repr``) with separators, so that ("ab", "c") and ("a", "bc") differ.

    >>> a, b = FieldHash(), FieldHash()
    >>> a.put("x", "ab", "c"); b.put("x", "a", "bc")
    >>> a.hexdigest() == b.hexdigest()
    False
    """

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def put(self, *parts: Any) -> None:
        for p in parts:
            self._h.update(p.encode() if isinstance(p, str) else repr(p).encode())
            self._h.update(b"\x1f")
        self._h.update(b"\x1e")

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _git(where: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV}
    out = subprocess.run(
        ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=False, env=env
    )
    return out.returncode, out.stdout.strip()


def git_commit(where: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"git_commit": HASH}`` (and ``"git_dirty": True`` where tracked files of the folder differ from
    that commit) when ``where`` (default: sdmodel's own source folder) is tracked by a git checkout;
    ``{}`` otherwise: an installed wheel, no git, or a folder git does not track."""
    folder = Path(where) if where is not None else _PACKAGE_DIR
    try:
        # a wheel installed into a virtual environment inside some repository is not that repository's code:
        # the folder must itself be tracked
        rc, tracked = _git(folder, "ls-files", "--", ".")
        if rc != 0 or not tracked:
            return {}
        rc, commit = _git(folder, "rev-parse", "HEAD")
        if rc != 0 or not commit:
            return {}
        rc, _ = _git(folder, "diff", "--quiet", "HEAD", "--", ".")
    except (OSError, subprocess.SubprocessError):  # no git, or it hung: the commit is not known
        return {}
    return {"git_commit": commit, **({"git_dirty": True} if rc == 1 else {})}


def provenance(files: Iterable[str | os.PathLike] = ()) -> dict[str, Any]:
    """Where a directory's results come from, as a manifest records it (``provenance``).

    ``sdmodel``: the package version; ``git_commit`` (and ``git_dirty``) when sdmodel runs from a git
    checkout (absent otherwise, see :func:`git_commit`); ``files``: input file -> sha256 of its bytes,
    for every file given that exists (a model built in Python has none).

    Examples
    --------
    >>> p = provenance([])
    >>> p["sdmodel"] == __version__, p["files"]
    (True, {})
    """
    hashes = {}
    for f in files:
        path = Path(f)
        if str(path) not in hashes and path.is_file():
            hashes[str(path)] = file_sha256(path)
    return {"sdmodel": __version__, **git_commit(), "files": hashes}


def read_manifest(run_dir: str | Path) -> Manifest:
    """The manifest of a run directory, as the type of its kind.

    Raises
    ------
    ManifestError
        If there is no ``manifest.json``, or it is not one of sdmodel's (not JSON, an unknown
        kind, a newer schema).
    """
    path = Path(run_dir) / FILE
    if not path.is_file():
        raise ManifestError(f"{run_dir}: not an sdmodel run directory (no {FILE})")
    raw = read_input(path, FILE, max_bytes=MAX_MANIFEST_BYTES, error=ManifestError)
    try:
        data = json.loads(decode_text(raw, str(path), FILE, error=ManifestError))
    except ValueError as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from None
    return Manifest.from_dict(data, str(path))


def manifest_kind(run_dir: str | Path) -> str | None:
    """The kind of the manifest in ``run_dir``, or None where there is no readable sdmodel manifest."""
    try:
        return read_manifest(run_dir).kind
    except ManifestError:
        return None


__all__ = [
    "CalibrationManifest",
    "EstimationManifest",
    "FILE",
    "FitManifest",
    "KINDS",
    "Manifest",
    "RunManifest",
    "SCHEMA_VERSION",
    "SensitivityManifest",
    "SequenceManifest",
    "ValidationManifest",
    "content_sha256",
    "file_sha256",
    "git_commit",
    "manifest_kind",
    "provenance",
    "read_manifest",
]
