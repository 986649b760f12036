"""The compile cache: one bounded in-memory LRU and an opt-in, tamper-evident disk store.

A compiled model is cached under a *fingerprint of what is compiled* (see
:func:`sdmodel.engine.compiler.fingerprint`), never under the bytes of a file: a model
changed in code (``dataclasses.replace``, ``Matrix.with_entry``) gets its own key
and so its own code and accounting report.

The disk store is off unless asked for (:func:`set_cache_dir`, or the
``SDMODEL_CACHE_DIR`` environment variable; the CLI asks for the user's cache
folder). Its entries are generated Python source that is executed when loaded,
so each carries an HMAC-SHA256 tag made with a per-user key kept in the cache
folder with owner-only permissions: an entry planted or edited by anyone who
cannot read that key does not verify and is never executed. An entry that does
not verify, is corrupt, or was written for another key or version is ignored
with one :class:`CacheWarning` line and the model is compiled again.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import importlib.util
import json
import os
import pickle
import secrets
import stat
import tempfile
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sdmodel import __version__

#: How many compiled models the in-memory cache keeps (least recently used ones are dropped).
MEMORY_SIZE = 32
_SCHEMA = 1
_KEY_FILE = "hmac.key"


class CacheWarning(UserWarning):
    """A disk cache entry was ignored (not verified, corrupt or stale) and the model recompiled."""


class MemoryCache:
    """A bounded, thread-safe least-recently-used mapping ``key -> value``."""

    def __init__(self, maxsize: int = MEMORY_SIZE):
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: str, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class DiskCache:
    """Entries ``<key>.json`` in one folder, each signed with the folder's HMAC key."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).expanduser()

    # -- the key ---------------------------------------------------------------
    def _secret(self, create: bool) -> bytes | None:
        """The folder's HMAC key; ``None`` (with a warning) if it is not private to this user."""
        path = self.folder / _KEY_FILE
        if create and not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return None
        # a key others could read (or write) could sign a planted entry: refuse the whole store
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077 or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            warnings.warn(
                f"compile cache {self.folder}: {_KEY_FILE} is not a private file of this user "
                "(expected mode 0600, owned by you); the disk cache is not used",
                CacheWarning,
                stacklevel=4,
            )
            return None
        secret = path.read_bytes()
        return secret if len(secret) >= 16 else None

    @staticmethod
    def _tag(secret: bytes, body: bytes) -> str:
        return hmac.new(secret, body, hashlib.sha256).hexdigest()

    # -- entries ---------------------------------------------------------------
    def load(self, key: str) -> dict | None:
        """The payload stored under ``key``, or ``None`` if absent or not trustworthy (warned)."""
        path = self.folder / f"{key}.json"
        if not path.exists():
            return None
        secret = self._secret(create=False)
        if secret is None:
            return None
        why = None
        try:
            data = json.loads(path.read_bytes())
            body = data["body"].encode()
            if not isinstance(data.get("tag"), str) or not hmac.compare_digest(self._tag(secret, body), data["tag"]):
                why = "its integrity tag does not verify"
            else:
                payload = json.loads(body)
                if payload.get("schema") != _SCHEMA or payload.get("key") != key:
                    why = "it was written for another key or cache version"
                else:
                    return payload
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            why = f"it cannot be read ({type(err).__name__})"
        warnings.warn(f"compile cache entry {path} ignored: {why}; compiling again", CacheWarning, stacklevel=4)
        return None

    def save(self, key: str, payload: dict) -> None:
        """Store ``payload`` (JSON-serialisable) under ``key``; a cache that cannot be written is not an error."""
        try:
            secret = self._secret(create=True)
            if secret is None:
                return
            body = json.dumps({**payload, "schema": _SCHEMA, "key": key}, sort_keys=True)
            text = json.dumps({"body": body, "tag": self._tag(secret, body.encode())})
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(text)
                os.replace(tmp, self.folder / f"{key}.json")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError:
            pass


_MEMORY = MemoryCache()
_DISK: list[DiskCache | None] = [None]


def set_cache_dir(folder: str | os.PathLike | None) -> None:
    """Use ``folder`` as the disk compile cache for this process (``None``: memory only).

    Compiled models are then reused across processes. The folder gets a private
    HMAC key (mode 0600) that signs every entry.

    Examples
    --------
    >>> import sdmodel, tempfile
    >>> sdmodel.set_cache_dir(tempfile.mkdtemp())
    >>> sdmodel.set_cache_dir(None)
    """
    _DISK[0] = DiskCache(folder) if folder is not None else None


@contextlib.contextmanager
def using_cache_dir(folder: str | os.PathLike | None):
    """Use ``folder`` as the disk compile cache inside a ``with`` block, then restore the previous one.

    The CLI runs each command inside one, with :func:`user_cache_dir`, so that a second
    ``sdmodel run`` of a large model in a new process does not compile it again.
    """
    previous = _DISK[0]
    set_cache_dir(folder)
    try:
        yield
    finally:
        _DISK[0] = previous


def user_cache_dir() -> Path:
    """``$SDMODEL_CACHE_DIR``, else ``~/.cache/sdmodel``: where the CLI keeps its compile cache."""
    d = os.environ.get("SDMODEL_CACHE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "sdmodel"


def memory_cache() -> MemoryCache:
    """The process's in-memory compile cache (bounded LRU)."""
    return _MEMORY


def disk_cache() -> DiskCache | None:
    """The disk compile cache in use: set by :func:`set_cache_dir`, or ``$SDMODEL_CACHE_DIR`` if set."""
    if _DISK[0] is None and os.environ.get("SDMODEL_CACHE_DIR"):
        return DiskCache(os.environ["SDMODEL_CACHE_DIR"])
    return _DISK[0]


@functools.cache
def _reader_fingerprint() -> str:
    """A hash of the code that makes a model of its files (and of the facts its record keeps), and of the
    sympy that parses it: a record is never used by another version of either."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]  # sdmodel/
    mods = ("core/inputs.py", "core/validate.py", "core/options.py", "model/names.py", "model/expr.py")
    for mod in (
        *mods,
        "model/translate.py",
        "model/spec.py",
        "model/algebra.py",
        "model/accounting.py",
        "engine/cache.py",
    ):
        with contextlib.suppress(OSError):
            h.update((package / mod).read_bytes())
    spec = importlib.util.find_spec("sympy")  # its release file names its version; sympy is not imported
    if spec is not None and spec.origin:
        with contextlib.suppress(OSError):
            h.update((Path(spec.origin).parent / "release.py").read_bytes())
    return h.hexdigest()


def _files_hash(paths) -> str | None:
    """sha256 of the files' bytes one after the other ("" for no file), as a model's ``spec_hash``; None
    if one cannot be read."""
    h = hashlib.sha256()
    for p in paths:
        if p:
            try:
                h.update(Path(p).read_bytes())
            except OSError:
                return None
    return h.hexdigest()


def cached_model(path_or_name: str | Path, scenario: str | Path | None = None):
    """:func:`sdmodel.load_model`, through the disk compile cache's record of the model's files.

    Without a disk cache (:func:`set_cache_dir`), this is ``load_model``. With one, a model file, scenario,
    parameter file and CSV files whose bytes are those a record was made of give back the model the
    record keeps, without parsing its expressions (sympy is not imported): its plain fields as they were,
    its equations, matrices and lookups parsed from the files the first time one of them is read (and
    checked to be what was recorded). Anything else, a changed byte of any of its files among them, loads
    the model from its files and records it. The record's hash of the model's expressions is that of the
    parsed model (:func:`sdmodel.model.spec.symbolic_digest`), so the compiled model found for it is the
    one compiled for those expressions: a changed model never gets another model's code.
    """
    from sdmodel.model import spec

    disk = disk_cache()
    path = spec.resolve_model_path(path_or_name)
    spath = None if scenario is None else spec.scenario_path(path, scenario)

    def load():
        return spec.load_model(path_or_name, scenario)

    if disk is None or path.suffix.lower() not in (".yaml", ".yml"):
        return load()
    key = hashlib.sha256(
        "\x1f".join(["record", str(_SCHEMA), __version__, _reader_fingerprint(), str(path), str(spath or "")]).encode()
    ).hexdigest()[:32]
    record = disk.load(f"m_{key}")
    if record is not None:
        try:
            inputs = [str(p) for p in record["inputs"]]
            if inputs and _files_hash(inputs) == record["spec_hash"]:
                plain = pickle.loads(base64.b64decode(record["plain"]))  # noqa: S301 - verified by our HMAC
                return spec.model_from_record({**record, "plain": plain}, load)
        except (KeyError, TypeError, ValueError, AttributeError, pickle.UnpicklingError, EOFError, ImportError):
            pass  # a verified record of an unexpected shape: load the model and record it again
    model = load()
    if model.inputs and _files_hash(model.inputs) == model.spec_hash:
        from sdmodel.core.errors import SdmodelError
        from sdmodel.model.accounting import derive

        try:
            roles = {"stocks": list(model.stocks), "roles": [[k, v] for k, v in derive(model).roles.items()]}
        except SdmodelError:  # a model whose stock dynamics cannot be derived: not recorded (it will not run)
            return model
        rec = spec.model_record(model, {"roles": roles})
        rec["plain"] = base64.b64encode(pickle.dumps(rec["plain"], protocol=pickle.HIGHEST_PROTOCOL)).decode()
        disk.save(f"m_{key}", {**rec, "inputs": list(model.inputs)})
    return model


def stock_roles(model) -> dict[str, str]:
    """How each stock's change is determined (:attr:`sdmodel.model.accounting.Derivation.roles`): from the
    record :func:`cached_model` read ``model`` back from, its stocks and expressions unchanged, without
    sympy; else derived."""
    from sdmodel.model.spec import recorded_fact

    facts = recorded_fact(model, "roles")
    if isinstance(facts, dict) and facts.get("stocks") == list(model.stocks):
        return {k: v for k, v in facts["roles"]}
    from sdmodel.model.accounting import derive

    return dict(derive(model).roles)


__all__ = [
    "cached_model",
    "stock_roles",
    "CacheWarning",
    "DiskCache",
    "MemoryCache",
    "disk_cache",
    "memory_cache",
    "set_cache_dir",
    "user_cache_dir",
    "using_cache_dir",
]
