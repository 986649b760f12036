"""The chunk store of a study: partial results saved as they finish, so that a long study resumes.

A study folder holds ``study.json`` (the key of the study and its plan, written
once by :func:`claim_store`) and ``chunks/chunk-00000.npz``, ``chunk-00001.npz``,
...: the arrays of rows ``lo:hi`` of the sample, each file written atomically
with the key and the rows it belongs to.  A chunk saved by another study (its
key differs), for other rows, or damaged (truncated by a kill) is not loaded:
it is computed again.  This module only reads and writes those files; what a
chunk holds is the evaluator's (:func:`sdmodel.study.base.evaluate_chunks`).

A study's outcomes that are too many to hold (a value per run for each tracked path and year) go,
chunk by chunk as they finish, into a :class:`ColumnFile`: an anonymous temporary file in the
store, column by column, from which the analysis reads one column at a time.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdmodel.core.errors import SpecError
from sdmodel.core.files import STUDY_MARKER, write_atomic_file

#: The file that makes a folder a study folder: the study's key and plan (``study.json``).
MARKER = STUDY_MARKER
#: The sub-folder of a store that holds its chunks.
CHUNKS = "chunks"


def study_key(*parts) -> str:
    """A short hash of everything a study's results depend on (config, model, sample, solver)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def claim_store(store: str | Path, key: str, plan: Mapping) -> Path:
    """Make ``store`` the home of the study ``key``: new, or the same study resuming.

    A directory holding a *different* study is refused (its chunks would not
    be ours), rather than silently mixed or overwritten.
    """
    store = Path(store)
    info = store / MARKER
    if info.exists():
        try:
            old = json.loads(info.read_text()).get("key")
        except ValueError:
            old = None
        if old != key:
            raise SpecError(
                f"{store} holds a different study (key {old}, this one is {key}): "
                f"choose another --out, or delete it to start over"
            )
        return store
    if store.exists() and any(store.iterdir()):
        raise SpecError(f"{store} exists and is not a study directory: choose another --out")
    store.mkdir(parents=True, exist_ok=True)
    write_atomic_file(info, (json.dumps({"key": key, **plan}, indent=2, default=str) + "\n").encode())
    return store


@dataclass(frozen=True)
class ChunkStore:
    """The saved chunks of the study ``key`` under ``root/chunks``.

    Examples
    --------
    >>> import tempfile
    >>> s = ChunkStore(Path(tempfile.mkdtemp()), "k1")
    >>> s.save(0, (0, 2), {"Y": np.ones((2, 1))})
    >>> s.load(0, (0, 2))["Y"].shape, s.load(0, (0, 3)), ChunkStore(s.root, "k2").load(0, (0, 2))
    ((2, 1), None, None)
    """

    root: Path
    key: str

    def open(self) -> ChunkStore:
        """Create the chunk folder (and the store) if missing; the store itself."""
        (Path(self.root) / CHUNKS).mkdir(parents=True, exist_ok=True)
        return self

    def path(self, i: int) -> Path:
        """The file of chunk ``i``."""
        return Path(self.root) / CHUNKS / f"chunk-{i:05d}.npz"

    def save(self, i: int, rows: tuple[int, int], arrays: Mapping[str, np.ndarray]) -> None:
        """Save chunk ``i`` (rows ``lo:hi`` of the sample) atomically, with the key and its rows."""
        path = self.path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = _io.BytesIO()
        # numpy's stub lets **kwds reach the allow_pickle flag; the names here are outcome names
        np.savez(buf, __key__=np.array(self.key), __rows__=np.array(rows), **arrays)  # type: ignore[arg-type]
        write_atomic_file(path, buf.getvalue())

    def load(self, i: int, rows: tuple[int, int]) -> dict[str, np.ndarray] | None:
        """Chunk ``i`` if it was saved by this study for these rows; None if missing, another's or damaged."""
        try:
            # from bytes: np.load of a truncated file raises before its own `with` could close the handle
            with np.load(_io.BytesIO(self.path(i).read_bytes()), allow_pickle=False) as z:
                if str(z["__key__"]) != self.key or list(z["__rows__"]) != list(rows):
                    return None
                return {k: z[k] for k in z.files if not k.startswith("__")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a damaged file is recomputed
            return None


class ColumnFile:
    """A (rows, *columns) float64 matrix kept in a file, one column after another: filled a block of rows
    at a time (:meth:`put`), read one column at a time (:meth:`column`), so memory holds at most a
    column, never the matrix. The file is anonymous (no name in ``folder``) and goes when closed or
    when the process ends, even when it is killed.

    Examples
    --------
    >>> import tempfile
    >>> with ColumnFile(tempfile.mkdtemp(), 4, (2, 3)) as cf:
    ...     cf.put(0, np.arange(12.0).reshape(2, 2, 3)); cf.put(2, np.ones((2, 2, 3)))
    ...     cf.shape, cf.column((1, 2)).tolist(), cf.column(0).tolist()
    ((4, 2, 3), [5.0, 11.0, 1.0, 1.0], [0.0, 6.0, 1.0, 1.0])
    """

    def __init__(self, folder: str | Path, rows: int, columns: tuple[int, ...]):
        self.rows, self.columns = int(rows), tuple(int(c) for c in columns)
        self.width = math.prod(self.columns)
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".columns-")

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.rows, *self.columns)

    def put(self, lo: int, block: np.ndarray) -> None:
        """Rows ``lo:lo + len(block)`` of every column (``block``: (rows, *columns))."""
        block = np.asarray(block, dtype="<f8").reshape(len(block), self.width)
        fd = self._file.fileno()
        for j in range(self.width):
            os.pwrite(fd, np.ascontiguousarray(block[:, j]).tobytes(), 8 * (j * self.rows + lo))

    def column(self, j: int | tuple[int, ...]) -> np.ndarray:
        """Column ``j`` (a flat index, or an index into the columns' shape): all rows."""
        flat = int(np.ravel_multi_index(j, self.columns)) if isinstance(j, tuple) else int(j)
        out = bytearray(8 * self.rows)
        got = os.preadv(self._file.fileno(), [out], 8 * flat * self.rows)
        if got != len(out):
            raise OSError(f"column {j}: read {got} of {len(out)} bytes")
        return np.frombuffer(out, dtype="<f8")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ColumnFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
