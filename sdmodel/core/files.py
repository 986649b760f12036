"""Writing files and directories atomically, and what may be written where.

Every writer of sdmodel goes through this module: one run's directory
(:func:`sdmodel.report.rundirs.write_run`: ``results.csv``, ``results.parquet``,
``residuals.csv``, ``columns.csv`` and ``manifest.json``), a calibration's
(:func:`sdmodel.report.rundirs.write_calibration`), and the results of a
sensitivity or sequencing study (:func:`sdmodel.report.rundirs.write_sensitivity`,
:func:`sdmodel.report.rundirs.write_sequence`), into the folder the study resumes in.

:func:`write_atomic_dir`, which writes both, is careful with what is already at
the target (the ``--out`` of ``sdmodel run`` and ``sdmodel calibrate``):

* It never removes anything sdmodel did not write.  The target may be new (its
  missing parent folders are created), an empty folder, or an earlier directory
  of the same kind (its ``manifest.json`` says ``run`` or ``calibration``) that
  holds only the files sdmodel writes there.  An earlier one holding other files
  too is replaced only with ``overwrite=True`` (``--overwrite``).  Anything else
  (a file, a folder of other things, another kind of sdmodel directory, the
  working directory or a folder above it) raises
  :class:`~sdmodel.core.errors.OutputError` naming it, and is left as it was.
* The new directory is built in a hidden sibling ``.NAME.tmp-PID-XXXXXXXX`` and
  moved into place by one rename (an atomic exchange, on Linux, when an earlier
  directory is replaced), so an interrupted write leaves the previous complete
  directory or none, never a half-written one; the earlier directory is removed
  only once the new one is in place.
* A lock file ``.NAME.lock`` beside the target (``flock``; removed after) stops
  two processes writing the same directory at once: the second gets an error.
* Hidden siblings left by a writer that was killed (``.NAME.tmp-PID-*``,
  ``.NAME.old-PID-*``) are removed at the next write into the same parent folder,
  once their PID is no longer running and their name's lock is free; an earlier
  directory caught between the two renames of a replace is put back if nothing
  took its place.
* A ``sensitivity`` or ``sequence`` directory is also the folder its study
  resumes in (``study.json`` and the saved chunks, :mod:`sdmodel.core.store`): the
  new directory keeps every entry of the earlier folder that it does not write
  itself, as hard links (nothing copied, times unchanged; a copy where the file
  system has no hard links), so the results change in one step and the chunks
  and anything else there stay.

The command line checks ``--out`` with :func:`check_out_dir` before it
simulates or calibrates, so a bad one fails at once; study folders, which are
resumed into, are checked with :func:`check_out_folder`.  Every refusal is an
:class:`~sdmodel.core.errors.OutputError`: one line naming the path, what was
expected, and a hint.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import functools
import json
import os
import platform
import re
import shutil
import sys
import threading
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from sdmodel import __version__
from sdmodel.core.errors import OutputError, SdmodelError, SpecError
from sdmodel.core.manifest import manifest_kind

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, concurrent writers are not detected
    fcntl = None  # type: ignore[assignment]  # the module or None, tested before each use

_PACKAGES = ("numpy", "scipy", "sympy", "pandas", "pyarrow", "xarray", "pyyaml", "networkx")


def created(timestamp: float | None = None) -> str:
    """The ``created`` time of a manifest: now (or a POSIX ``timestamp``), UTC, to the second."""
    when = _dt.datetime.now(_dt.UTC) if timestamp is None else _dt.datetime.fromtimestamp(timestamp, _dt.UTC)
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
    """Write ``data`` to ``path`` atomically: a temporary sibling, flushed, then renamed over it.

    Raises
    ------
    OutputError
        If it cannot be written (its folder is missing or not writable, it is a
        folder, the disk is full); ``path`` is then left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if isinstance(err, SdmodelError):
            raise
        raise OutputError(
            f"cannot write {path}: {err.strerror or err}; check that its folder exists and is "
            f"writable, and that {path.name} is not a folder"
        ) from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def parquet_bytes(frame) -> bytes:
    """A DataFrame as Parquet bytes (index dropped), for :func:`write_atomic_file`."""
    import io as _io

    buf = _io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


#: The files sdmodel writes into a directory of each kind (``report.html`` is ``sdmodel report``'s):
#: an earlier directory holding only these is replaced without ``overwrite``.
OWN_FILES = {
    "run": frozenset(
        {
            "results.csv",
            "results.parquet",
            "residuals.csv",
            "columns.csv",
            "variables.csv",
            "manifest.json",
            "figure.png",
            "report.html",
        }
    ),
    "calibration": frozenset(
        {
            "params.yaml",
            "report.json",
            "report.txt",
            "fit.csv",
            "fit.parquet",
            "fit.png",
            "manifest.json",
            "report.html",
        }
    ),
}

#: Kinds whose directory is also the folder its study resumes in, marked by :data:`STUDY_MARKER`:
#: a new result keeps every entry of the earlier folder it does not write (see :func:`write_atomic_dir`).
STUDY_KINDS = frozenset({"sensitivity", "sequence", "estimation", "validation"})
#: The file that makes a folder a study folder (:mod:`sdmodel.core.store` writes it).
STUDY_MARKER = "study.json"

#: The hidden siblings :func:`write_atomic_dir` makes: ``.NAME.tmp-PID-XXXXXXXX`` (being built) and
#: ``.NAME.old-PID-XXXXXXXX`` (an earlier directory being removed); the PID tells a killed writer's
#: from a live one's.
_HIDDEN = re.compile(r"^\.(?P<name>.+)\.(?P<what>tmp|old)-(?P<pid>[0-9]+)-[0-9a-f]{8}$")
_HINT = "choose another --out (a new or empty folder)"


def _what(kind: str) -> str:
    return f"{kind} directory"


def _hidden(out: Path, what: str) -> Path:
    return out.parent / f".{out.name}.{what}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _check_creatable(out: Path) -> None:
    """``out`` does not exist: its nearest existing ancestor must be a folder we may write in."""
    anc = out.parent
    while not os.path.lexists(anc) and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(f"{out}: cannot be created, {anc} is a file, not a folder; {_HINT}")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: cannot be created, {anc} is not writable; {_HINT}")


def _entries_shown(entries: list[str]) -> str:
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {shown}"


def _study_state(out: Path, kind: str, entries: list[str]) -> str:
    """A non-empty folder at ``out`` for a study ``kind``: ``"update"`` if it is a study folder (or an earlier
    ``kind`` directory) whose entries the new one keeps, else :class:`OutputError`."""
    found = manifest_kind(out)
    if found is not None and found != kind:
        raise OutputError(f"{out} holds an sdmodel {_what(found)}, not a {_what(kind)}; it is never replaced: {_HINT}")
    marker = out / STUDY_MARKER
    if found is None and not marker.is_file():
        raise OutputError(
            f"{out} exists and is not a study folder (no {STUDY_MARKER}; it holds {_entries_shown(entries)}); "
            f"sdmodel never writes into it: {_HINT}"
        )
    try:
        of = json.loads(marker.read_text()).get("kind") if marker.is_file() else None
    except (OSError, ValueError, AttributeError):
        of = None  # an unreadable marker: the study's owner (sdmodel.core.store.claim_store) refuses it before
    if of is not None and of != kind:
        raise OutputError(f"{out} is the folder of a {of} study, not of a {kind} study; it is never written: {_HINT}")
    return "update"


def _target_state(out: Path, kind: str, overwrite: bool) -> str:
    """What is at ``out`` (absolute): ``"new"``, ``"empty"``, ``"replace"`` (an earlier ``kind`` directory
    that may go) or ``"update"`` (a study folder, whose other entries the new directory keeps); anything that
    may not be replaced raises :class:`OutputError`."""
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        where = "the working directory" if out == cwd else f"a folder above the working directory {cwd}"
        raise OutputError(
            f"{out} is {where}: sdmodel writes a {_what(kind)} as a folder of its own and never "
            f"replaces this one; give --out a new or empty folder, e.g. --out runs/NAME"
        )
    if not os.path.lexists(out):
        _check_creatable(out)
        return "new"
    if not out.is_dir():
        raise OutputError(f"{out} is a file, expected a folder for the {_what(kind)}: {_HINT}")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: its folder {out.parent} is not writable, so it cannot be replaced: {_HINT}")
    try:
        entries = sorted(os.listdir(out))
    except OSError as err:
        raise OutputError(f"{out}: cannot be read ({err.strerror or err}): {_HINT}") from err
    if not entries:
        return "empty"
    if kind in STUDY_KINDS:
        return _study_state(out, kind, entries)
    found = manifest_kind(out)
    if found is None:
        raise OutputError(
            f"{out} exists and is not an sdmodel {_what(kind)} (no manifest.json; it holds "
            f"{_entries_shown(entries)}); sdmodel never "
            f"replaces it{', not even with --overwrite' if overwrite else ''}: {_HINT}"
        )
    if found != kind:
        raise OutputError(
            f"{out} holds an sdmodel {_what(found)}, not a {_what(kind)}; it is never replaced"
            f"{', not even with --overwrite' if overwrite else ''}: {_HINT}"
        )
    extra = [e for e in entries if e not in OWN_FILES.get(kind, ())]
    if extra and not overwrite:
        shown = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
        raise OutputError(
            f"{out} holds an earlier {kind} and also files sdmodel did not write there ({shown}): "
            f"use --overwrite to replace it, those files included, or {_HINT}"
        )
    return "replace"


def check_out_dir(out_dir: str | os.PathLike, kind: str = "run", *, overwrite: bool = False) -> Path:
    """Check that a ``kind`` directory (``run``, ``calibration``) may be written at ``out_dir``; change nothing.

    Called before a long computation, so a bad ``--out`` fails at once rather
    than after it.  :func:`write_atomic_dir` checks again when it writes.

    Returns
    -------
    Path
        ``out_dir``, absolute.

    Raises
    ------
    OutputError
        If ``out_dir`` is a file, the working directory (or above it), a folder
        that is not an earlier ``kind`` directory, one holding other files
        (without ``overwrite``), or cannot be created.
    """
    out = Path(out_dir).resolve()
    _target_state(out, kind, overwrite)
    return out


def check_out_folder(out_dir: str | os.PathLike, marker: str | None = None) -> Path:
    """Check that a folder that is resumed into (a study's) may be used at ``out_dir``; change nothing.

    It may be new (it can be created), empty, or, given ``marker``, one holding
    that file (``study.json``: a study folder, whose owner then checks it is the
    same study).  Its results are swapped in as a new folder
    (:func:`write_atomic_dir`), so it may not be the working directory or a
    folder above it, and its parent must be writable.

    Returns
    -------
    Path
        ``out_dir``, absolute.

    Raises
    ------
    OutputError
        If it is a file, not writable, cannot be created, (with ``marker``) a
        non-empty folder without ``marker``, the working directory or above it,
        or its parent is not writable.
    """
    out = Path(out_dir).resolve()
    if not os.path.lexists(out):
        _check_creatable(out)
        return out
    if not out.is_dir():
        raise OutputError(f"{out} is a file, expected a study folder: {_HINT}")
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out} is not writable: {_HINT}")
    if marker is not None and not (out / marker).is_file():
        try:
            entries = sorted(os.listdir(out))
        except OSError as err:
            raise OutputError(f"{out}: cannot be read ({err.strerror or err}): {_HINT}") from err
        if entries:
            raise OutputError(
                f"{out} exists and is not a study folder (no {marker}; it holds {_entries_shown(entries)}); "
                f"sdmodel never writes into it: {_HINT}"
            )
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        where = "the working directory" if out == cwd else f"a folder above the working directory {cwd}"
        raise OutputError(
            f"{out} is {where}: a study's results are swapped in as a folder of their own, which "
            f"cannot be this one; give --out a study folder of its own, e.g. --out runs/NAME"
        )
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"{out}: its folder {out.parent} is not writable, so its results cannot be swapped in: {_HINT}"
        )
    return out


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (when in doubt: yes, so nothing of it is removed)."""
    if os.name != "posix" or pid <= 0:
        return True  # os.kill(pid, 0) is not a probe on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # running, as another user
    except (OverflowError, ValueError):
        return False  # not a process id at all
    except OSError:
        return True
    return True


def _try_lock(lock: Path) -> int | None:
    """Take the ``flock`` on ``lock`` (created if need be) without waiting: its descriptor, or None if held.

    The holder removes the file when done; if that happened between our open and
    our lock we hold a lock on a removed file, so we check and take the new one.
    """
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as err:
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return fd  # this file system has no flock: go on without (the PID check still guards sweeps)
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            with contextlib.suppress(OSError):  # the holder's PID, for the message of whoever waits
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _unlock(lock: Path, fd: int) -> None:
    try:
        lock.unlink()  # while still holding it, so that a process that opened it meanwhile re-checks
    except OSError:
        pass
    finally:
        os.close(fd)


#: The output paths this thread holds the lock of (:func:`hold_out_dir`), so that the write inside takes
#: it again without waiting on itself.  Per thread: another thread of this process is another writer.
_HELD = threading.local()


def _held() -> set:
    if not hasattr(_HELD, "paths"):
        _HELD.paths = set()
    return _HELD.paths


@contextlib.contextmanager
def _locked(out: Path):
    """Hold ``.NAME.lock`` beside ``out`` (absolute; its parent exists), or raise :class:`OutputError` if
    another process (or thread) holds it."""
    if out in _held():
        yield  # this thread holds it already, for the whole command
        return
    lock = out.parent / f".{out.name}.lock"
    try:
        fd = _try_lock(lock)
    except OSError as err:
        raise OutputError(
            f"{out}: cannot create the lock file {lock} ({err.strerror or err}); is {out.parent} writable? {_HINT}"
        ) from err
    if fd is None:
        try:
            holder = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            holder = None
        raise OutputError(
            f"{out} is being written by another sdmodel process"
            f"{f' (pid {holder})' if holder else ''}, which holds the lock {lock}: wait until it "
            f"has finished, or choose another --out"
        )
    _held().add(out)
    try:
        yield
    finally:
        _held().discard(out)
        _unlock(lock, fd)


def _make_parent(out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out}: cannot create its folder {out.parent} ({err.strerror or err}): {_HINT}") from err


@contextlib.contextmanager
def hold_out_dir(out_dir: str | os.PathLike):
    """Hold the lock of ``out_dir`` for a whole command (the computation and then the write), so that a
    second command with the same ``--out`` fails at once instead of replacing the first one's result.

    Creates the missing parent folders (the lock file lives there).  The
    :func:`write_atomic_dir` inside, in the same thread, uses this lock.

    Raises
    ------
    OutputError
        If another process holds the lock, or the parent cannot be created.
    """
    out = Path(out_dir).resolve()
    _make_parent(out)
    with _locked(out):
        yield out


def _remove_tree(path: Path) -> None:
    """Remove a hidden directory of ours, best effort; ``manifest.json`` first, so that a directory half
    removed (the process killed meanwhile) is never taken for a complete one."""
    with contextlib.suppress(OSError):
        (path / "manifest.json").unlink()
    shutil.rmtree(path, ignore_errors=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _sweep(parent: Path, own: str) -> None:
    """Remove the hidden ``.NAME.tmp-PID-*`` / ``.NAME.old-PID-*`` folders killed writers left in ``parent``.

    One is stale when we hold its ``NAME``'s lock (no live writer of ``NAME``:
    the caller holds ``own``'s, the others are tried) and its PID is not running
    (or is ours: a PID reused, e.g. in a container; ours makes its temp folder
    only after this sweep).  An earlier directory (or study folder) caught between the
    renames of a replace (``.old-``, no atomic exchange) is put back if nothing took its place.
    """
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    stale: dict[str, list[tuple[str, Path]]] = {}
    for e in entries:
        m = _HIDDEN.match(e.name)
        if not m or not e.is_dir(follow_symlinks=False):
            continue
        pid = int(m["pid"])
        if (pid == os.getpid() and fcntl is not None) or not _alive(pid):
            stale.setdefault(m["name"], []).append((m["what"], Path(e.path)))
    for name, items in stale.items():
        lock, fd = parent / f".{name}.lock", None
        if name != own:
            try:
                fd = _try_lock(lock)
            except OSError:
                continue
            if fd is None:
                continue  # being written right now: its writer cleans up after itself
        try:
            out = parent / name
            olds = sorted((p for what, p in items if what == "old"), key=_mtime, reverse=True)  # newest first
            if not os.path.lexists(out):
                for p in olds:
                    if manifest_kind(p) is not None or (p / STUDY_MARKER).is_file():
                        with contextlib.suppress(OSError):
                            os.rename(p, out)
                            break
            for _, p in items:
                if os.path.lexists(p):
                    _remove_tree(p)
        finally:
            if fd is not None:
                _unlock(lock, fd)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


@functools.cache
def _renameat2():
    """libc's ``renameat2`` (Linux, glibc 2.28+), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap the directories ``a`` and ``b`` in one atomic step; False where the system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False  # an old kernel, or a file system without it: the two-rename fallback
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` (and the folders) before a rename makes them visible."""
    for d, _, files in os.walk(root):
        for f in files:
            if os.path.islink(os.path.join(d, f)):
                continue  # a link kept from a study folder: nothing of ours to flush
            with open(os.path.join(d, f), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(d))


def _swap_in(tmp: Path, out: Path) -> None:
    """Put the complete ``tmp`` in place of the earlier directory ``out``, then remove the earlier one."""
    old = _hidden(out, "old")
    if _exchange(tmp, out):  # out is never missing, not even for an instant
        try:
            os.rename(tmp, old)
        except OSError:
            old = tmp
    else:  # two renames: a kill between them is repaired by the next sweep
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old, out)
            raise
    _fsync_dir(out.parent)
    _remove_tree(old)  # the new one is in place; what is left of the old one, the next sweep removes


def _keep_entries(src: Path, dst: Path) -> None:
    """Put into ``dst`` every entry of ``src`` it lacks: files as hard links (their bytes and times
    unchanged; copies where the file system has no hard links), folders recreated and filled the same
    way, symbolic links as links.  What ``dst`` has already (the new results) stays."""
    for e in os.scandir(src):
        target = dst / e.name
        if e.is_dir(follow_symlinks=False):
            if not os.path.lexists(target):
                target.mkdir()
            if target.is_dir() and not target.is_symlink():
                _keep_entries(Path(e.path), target)
                with contextlib.suppress(OSError):
                    shutil.copystat(e.path, target, follow_symlinks=False)
        elif os.path.lexists(target):
            continue
        elif e.is_symlink():
            os.symlink(os.readlink(e.path), target)
        elif e.is_file(follow_symlinks=False):
            try:
                os.link(e.path, target)
            except OSError:
                shutil.copy2(e.path, target, follow_symlinks=False)
        else:
            raise OutputError(
                f"{e.path} is not a file, folder or link, so the new results of {src} cannot keep it: "
                f"move it out and run again (the saved chunks are reused)"
            )


def write_atomic_dir(
    out_dir: str | os.PathLike, fill: Callable[[Path], None], *, kind: str = "run", overwrite: bool = False
) -> Path:
    """Create the ``kind`` directory ``out_dir`` atomically: ``fill(tmp)`` writes into a hidden sibling, then
    it is moved into place.

    ``out_dir`` may be new (missing parent folders are created), an empty
    folder, or an earlier ``kind`` directory holding only the files sdmodel
    writes (:data:`OWN_FILES`); with ``overwrite``, also one holding other
    files besides.  Nothing else is ever replaced.  For the study kinds
    (:data:`STUDY_KINDS`) it may also be the study folder (``study.json``) or
    an earlier directory of the kind, whatever else it holds: every entry the
    new directory does not write is kept in it (hard links), and ``overwrite``
    does not matter.  An earlier directory is
    removed only after the new one is complete and in place.  The write holds
    the lock ``.NAME.lock`` beside ``out_dir`` and first sweeps the temporary
    folders killed writers left (see the module docstring).

    Parameters
    ----------
    out_dir : path
        The directory to write.
    fill : callable
        ``fill(tmp)`` writes the files into the folder ``tmp``.
    kind : str
        ``"run"``, ``"calibration"``, ``"sensitivity"`` or ``"sequence"``: what ``manifest.json``
        says, and what may be replaced.
    overwrite : bool
        Also replace an earlier ``kind`` directory that holds files sdmodel did not write.

    Returns
    -------
    Path
        ``out_dir``, absolute.

    Raises
    ------
    OutputError
        If ``out_dir`` may not be replaced or written (see :func:`check_out_dir`),
        another process is writing it, or a file-system error stops the write;
        whatever was at ``out_dir`` is then left as it was.
    """
    out = Path(out_dir).resolve()
    _target_state(out, kind, overwrite)  # before anything is created
    _make_parent(out)
    with _locked(out):
        _sweep(out.parent, out.name)
        tmp = _hidden(out, "tmp")
        try:
            tmp.mkdir()
            fill(tmp)
            # Again, under the lock and with the new directory filled: what is there now decides.
            state = _target_state(out, kind, overwrite)
            if state == "update":
                _keep_entries(out, tmp)
            _fsync_tree(tmp)
            if state in ("replace", "update"):
                _swap_in(tmp, out)
            else:
                try:
                    os.rename(tmp, out)  # onto nothing, or onto an empty folder; fails if one was filled
                except OSError as err:
                    if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                        raise OutputError(
                            f"{out} was created or filled by something else while this {kind} "
                            f"was written; nothing was replaced: {_HINT}"
                        ) from err
                    raise
                _fsync_dir(out.parent)
        except BaseException as err:
            _remove_tree(tmp)
            if isinstance(err, OSError) and not isinstance(err, SdmodelError):
                where = f" ({err.filename})" if err.filename else ""
                raise OutputError(
                    f"{out}: writing the {_what(kind)} failed: {err.strerror or err}{where}; nothing was replaced"
                ) from err
            raise
    return out
