"""``--out`` never destroys what sdmodel did not write (issue 23, item 1).

Run and calibration directories are new, empty or earlier ones of the same
kind; temporary folders of killed writers are swept; concurrent writers get an
error; study folders refuse what is not theirs; ``export --out DIR/`` is a folder.
"""

import contextlib
import fcntl
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from sdmodel import cli
from sdmodel.core import files as io
from sdmodel.core.errors import OutputError, SdmodelError

from .test_calibration import GOOD, write_config
from .test_sensitivity import write_study


def snapshot(root):
    """Every file and folder under ``root`` with its bytes, to show nothing changed."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), root)] = None
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def project(path):
    """A folder that is not a run: a git checkout with a model and notes."""
    (path / ".git" / "refs").mkdir(parents=True)
    (path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (path / "model.yaml").write_text("name: mine\n")
    (path / "notes").mkdir()
    (path / "notes" / "todo.txt").write_text("everything\n")
    return path


def hidden(parent, name="D"):
    """The hidden siblings of ``name`` (temporary folders, lock) left in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("sdmodel: error:") and err.count("\n") == 0, err
    for n in needles:
        assert n in err, err
    return err


def run(out, *extra):
    return cli.main(["run", "sim", "--no-figure", "--out", str(out), *extra])


def dead_pid():
    """The PID of a process that has finished (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ------------------------------------------------------------------------ what --out may replace

@pytest.mark.parametrize("extra", [[], ["--overwrite"]])
def test_out_dot_leaves_every_file_and_exits_1(tmp_path, monkeypatch, capsys, extra):
    proj = project(tmp_path / "proj")
    monkeypatch.chdir(proj)
    before = snapshot(proj)
    assert run(".", *extra) == 1
    one_line_error(capsys, f"{proj} is the working directory", "--out runs/NAME")
    assert snapshot(proj) == before


def test_out_above_the_working_directory_or_an_earlier_run_there_is_refused(tmp_path, monkeypatch, capsys):
    assert run(tmp_path / "D") == 0
    monkeypatch.chdir(tmp_path / "D")              # inside an earlier run: still not replaced, not even so
    before = snapshot(tmp_path)
    assert run(".", "--overwrite") == 1
    one_line_error(capsys, "is the working directory")
    assert run("..") == 1
    one_line_error(capsys, "a folder above the working directory")
    assert snapshot(tmp_path) == before


def test_a_file_at_out_is_an_error_and_kept(tmp_path, capsys):
    f = tmp_path / "D"
    f.write_text("precious\n")
    assert run(f, "--overwrite") == 1
    one_line_error(capsys, f"{f} is a file, expected a folder", "choose another --out")
    assert f.read_text() == "precious\n" and hidden(tmp_path) == []


@pytest.mark.parametrize("extra", [[], ["--overwrite"]])
def test_a_folder_that_is_not_a_run_is_refused_and_kept(tmp_path, capsys, extra):
    proj = project(tmp_path / "D")
    before = snapshot(proj)
    assert run(proj, *extra) == 1
    err = one_line_error(capsys, f"{proj} exists and is not an sdmodel run directory",
                         "3 entries: .git, model.yaml, notes", "choose another --out")
    assert ("not even with --overwrite" in err) == bool(extra)
    assert snapshot(proj) == before and hidden(tmp_path) == []


def test_an_empty_folder_is_used_and_missing_parents_created(tmp_path):
    (tmp_path / "E").mkdir()
    assert run(tmp_path / "E") == 0
    assert (tmp_path / "E" / "manifest.json").is_file()
    assert run(tmp_path / "a" / "b" / "N") == 0
    assert (tmp_path / "a" / "b" / "N" / "results.csv").is_file()
    assert hidden(tmp_path, "E") == [] and hidden(tmp_path / "a" / "b", "N") == []


def test_an_earlier_run_is_replaced_and_with_added_files_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "D"
    assert run(out) == 0
    assert cli.main(["run", "sim", "--set", "theta=0.3", "--out", str(out)]) == 0   # only files sdmodel wrote
    assert json.loads((out / "manifest.json").read_text())["parameters"]["theta"] == 0.3
    assert (out / "figure.png").exists()
    (out / "notes.txt").write_text("mine\n")
    capsys.readouterr()
    assert cli.main(["run", "sim", "--set", "theta=0.25", "--out", str(out), "--no-figure"]) == 1
    one_line_error(capsys, f"{out} holds an earlier run and also files sdmodel did not write there (notes.txt)",
                   "use --overwrite")
    assert (out / "notes.txt").exists()
    assert json.loads((out / "manifest.json").read_text())["parameters"]["theta"] == 0.3
    assert cli.main(["run", "sim", "--set", "theta=0.25", "--out", str(out), "--no-figure", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["columns.csv", "manifest.json", "residuals.csv", "results.csv",
                                                     "results.parquet", "variables.csv"]
    assert json.loads((out / "manifest.json").read_text())["parameters"]["theta"] == 0.25
    assert [p.name for p in tmp_path.iterdir()] == ["D"]          # no temporary folder, no lock left


def test_replace_without_an_atomic_exchange(tmp_path, monkeypatch):
    """Where renameat2 is missing: two renames, the old directory removed only after the new one is in."""
    out = tmp_path / "D"
    assert run(out) == 0
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    assert cli.main(["run", "sim", "--set", "theta=0.3", "--out", str(out), "--no-figure", "--overwrite"]) == 0
    assert json.loads((out / "manifest.json").read_text())["parameters"]["theta"] == 0.3
    assert [p.name for p in tmp_path.iterdir()] == ["D"]


def test_an_interrupted_overwrite_keeps_the_earlier_run(tmp_path, monkeypatch):
    out = tmp_path / "D"
    assert run(out) == 0
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(io, "_fsync_tree", boom)   # the new one is written but not yet in place
    with pytest.raises(KeyboardInterrupt):
        run(out, "--overwrite")
    assert snapshot(out) == before and [p.name for p in tmp_path.iterdir()] == ["D"]


def test_other_kinds_of_sdmodel_directory_are_never_replaced(tmp_path, capsys):
    cal = tmp_path / "cal"
    cal.mkdir()
    (cal / "manifest.json").write_text(json.dumps({"kind": "calibration"}))
    assert run(cal, "--overwrite") == 1
    one_line_error(capsys, f"{cal} holds an sdmodel calibration directory, not a run directory")
    assert run(tmp_path / "r") == 0
    assert cli.main(["calibrate", "japan", "--out", str(tmp_path / "r"), "--overwrite", "--no-progress"]) == 1
    one_line_error(capsys, "holds an sdmodel run directory, not a calibration directory")
    with pytest.raises(OutputError):
        io.check_out_dir(tmp_path / "r", "calibration", overwrite=True)
    assert io.check_out_dir(tmp_path / "r", "run") == (tmp_path / "r").resolve()


def test_calibrate_out_refuses_before_fitting_and_overwrite_replaces(tmp_path, capsys):
    p = write_config(tmp_path, GOOD)
    args = ["calibrate", str(p), "--no-progress", "--window", "0", "30", "--out"]
    proj = project(tmp_path / "proj")
    assert cli.main([*args, str(proj), "--overwrite"]) == 1
    one_line_error(capsys, "is not an sdmodel calibration directory")
    out = tmp_path / "cal"
    assert cli.main([*args, str(out)]) == 0
    (out / "notes.txt").write_text("mine\n")
    assert cli.main([*args, str(out)]) == 1
    one_line_error(capsys, "holds an earlier calibration", "use --overwrite")
    assert cli.main([*args, str(out), "--overwrite"]) == 0
    assert not (out / "notes.txt").exists() and (out / "params.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_default_out_never_lands_on_an_earlier_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "sim", "--no-figure"]) == 0
    assert cli.main(["run", "sim", "--no-figure"]) == 0
    assert len(list((tmp_path / "runs").iterdir())) == 2


# ------------------------------------------------------------------------ file-system errors: one line

def test_unwritable_parent_as_access_reports_it(tmp_path, monkeypatch, capsys):
    """What the check does when the parent is not writable, also where tests run as root."""
    ro = tmp_path / "ro"
    ro.mkdir()
    access = os.access
    monkeypatch.setattr(io.os, "access", lambda p, mode, **k: False if str(p) == str(ro) else access(p, mode, **k))
    assert run(ro / "D") == 1
    one_line_error(capsys, f"{ro / 'D'}: cannot be created, {ro} is not writable", "choose another --out")
    assert list(ro.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: chmod does not stop it")
def test_unwritable_parent_is_one_line(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert run(ro / "D") == 1
        one_line_error(capsys, f"{ro / 'D'}: cannot be created, {ro} is not writable")
        assert run(ro / "x" / "D") == 1
        one_line_error(capsys, "is not writable")
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


def test_a_file_in_the_parent_path_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert run(tmp_path / "f" / "D") == 1
    one_line_error(capsys, f"cannot be created, {tmp_path / 'f'} is a file, not a folder")
    assert cli.main(["tables", "sim", "--out", str(tmp_path / "f" / "t.md")]) == 1
    one_line_error(capsys, f"cannot write {tmp_path / 'f' / 't.md'}")


# ------------------------------------------------------------------------ lock and stale temporary folders

def test_a_writer_holding_the_lock_gives_a_clear_error(tmp_path, capsys):
    lock = tmp_path / ".D.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)   # as another sdmodel process writing D would
        fh.write("4242\n")
        fh.flush()
        assert run(tmp_path / "D") == 1
        one_line_error(capsys, f"{tmp_path / 'D'} is being written by another sdmodel process (pid 4242)",
                       "wait until it has finished")
    assert not (tmp_path / "D").exists() and hidden(tmp_path) == [".D.lock"]
    assert run(tmp_path / "D") == 0                     # a lock file left by a killed process is no obstacle
    assert hidden(tmp_path) == []


def test_a_second_command_with_the_same_out_fails_while_the_first_computes(tmp_path, capsys):
    """The lock is held from the check of --out to the write, not only while writing."""
    out = tmp_path / "D"
    with io.hold_out_dir(out) as held:                  # as `sdmodel run ... --out D` does while it simulates
        assert held == out.resolve()
        with ThreadPoolExecutor(1) as pool:             # another thread is another writer
            assert pool.submit(run, out).result() == 1
        one_line_error(capsys, f"{out} is being written by another sdmodel process (pid {os.getpid()})")
        assert io.write_atomic_dir(out, lambda tmp: (tmp / "manifest.json").write_text("{}")) == out.resolve()
    assert hidden(tmp_path) == [] and io.manifest_kind(out) == "run"


def test_stale_temporary_folders_of_dead_writers_are_swept(tmp_path):
    pid = dead_pid()
    tmp = tmp_path / f".D.tmp-{pid}-0123abcd"
    tmp.mkdir()
    (tmp / "results.csv").write_text("t\n")
    old = tmp_path / f".D.old-{pid}-89abcdef"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    other = tmp_path / f".E.tmp-{pid}-deadbeef"       # another output's, in the same parent
    other.mkdir()
    alive = tmp_path / f".F.tmp-{os.getppid()}-deadbeef"   # a live process's: kept
    alive.mkdir()
    mine = tmp_path / ".D.tmp-notes"                   # not our pattern: kept
    mine.mkdir()
    assert run(tmp_path / "D") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".D.tmp-notes", alive.name, "D"]


def test_a_run_caught_between_the_renames_of_a_replace_is_put_back(tmp_path, capsys):
    """Killed after moving the earlier run aside (no atomic exchange) and before moving the new one in."""
    pid = dead_pid()
    assert run(tmp_path / "w" / "old") == 0 and run(tmp_path / "w" / "new") == 0
    (tmp_path / "w" / "old" / "notes.txt").write_text("mine\n")
    os.rename(tmp_path / "w" / "old", tmp_path / f".D.old-{pid}-0123abcd")
    os.rename(tmp_path / "w" / "new", tmp_path / f".D.tmp-{pid}-89abcdef")
    (tmp_path / "w").rmdir()
    capsys.readouterr()
    assert run(tmp_path / "D") == 1                     # the earlier run is back, notes and all: not replaced
    one_line_error(capsys, "holds an earlier run", "notes.txt")
    assert (tmp_path / "D" / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D"]


# A writer that pauses at a chosen moment, for the kill -9 test.
KILLED = r"""
import os, sys, time
import sdmodel.core.files as io

def pause(*a, **k):
    print("ready", flush=True)
    time.sleep(120)

phase = sys.argv[1]
if phase == "filled":                       # the new directory written, not yet in place
    io._fsync_tree = pause
elif phase == "replaced":                   # the new one in place, the earlier one not yet removed
    remove = io._remove_tree
    io._remove_tree = lambda p: pause() if ".old-" in p.name else remove(p)
elif phase == "between":                    # no atomic exchange: the earlier one moved aside, the new one not in
    io._exchange = lambda a, b: False
    rename = os.rename
    def between(a, b):
        rename(a, b)
        if ".old-" in os.path.basename(b):
            pause()
    os.rename = between
from sdmodel.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_kill_9_at_any_moment_leaves_nothing_after_the_next_run(tmp_path):
    phases = ["filled", "replaced", "between"]
    procs = {}
    for ph in phases:
        (tmp_path / ph).mkdir()
        if ph in ("replaced", "between"):
            assert run(tmp_path / ph / "D") == 0       # an earlier run to replace
        procs[ph] = subprocess.Popen([sys.executable, "-c", KILLED, ph, "run", "sim", "--no-figure", "--out", "D"],
                                     cwd=tmp_path / ph, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for ph, p in procs.items():                    # all start at once: a few seconds in all
            line = ""
            while line.strip() != "ready":
                line = p.stdout.readline()
                assert line, f"{ph}: the writer ended before the moment to kill it: {p.stderr.read()[-2000:]}"
    finally:
        for p in procs.values():
            with contextlib.suppress(ProcessLookupError):
                p.kill()                               # SIGKILL: no cleanup of any kind
            p.communicate()                            # reaped: its PID is no longer running
    for ph in phases:
        assert any(".tmp-" in n or ".old-" in n for n in hidden(tmp_path / ph)), ph   # something to sweep
    for ph in phases:
        assert run(tmp_path / ph / "D") == 0, ph
        assert sorted(p.name for p in (tmp_path / ph).iterdir()) == ["D"], ph
        assert io.manifest_kind(tmp_path / ph / "D") == "run"


# ------------------------------------------------------------------------ study folders and export

def test_sensitivity_and_sequence_refuse_what_is_not_their_study(tmp_path, monkeypatch, capsys):
    study = write_study(tmp_path)
    proj = project(tmp_path / "proj")
    monkeypatch.chdir(proj)
    before = snapshot(proj)
    sens = ["sensitivity", str(study), "--method", "morris", "-N", "4", "--jobs", "1", "--no-progress", "--out"]
    seq = ["sequence", str(study), "--jobs", "1", "--no-progress", "--out"]
    assert cli.main([*sens, "."]) == 1
    one_line_error(capsys, f"{proj} exists and is not a study folder (no study.json", "choose another --out")
    assert cli.main([*seq, "notes"]) == 1
    one_line_error(capsys, f"{proj / 'notes'} exists and is not a study folder")
    assert cli.main([*seq, "model.yaml"]) == 1
    one_line_error(capsys, f"{proj / 'model.yaml'} is a file, expected a study folder")
    assert snapshot(proj) == before
    assert run(tmp_path / "r") == 0
    assert cli.main([*seq, str(tmp_path / "r")]) == 1
    one_line_error(capsys, "exists and is not a study folder")
    assert cli.main([*sens, str(tmp_path / "r")]) == 1
    one_line_error(capsys, "exists and is not a study folder")
    assert io.manifest_kind(tmp_path / "r") == "run"


def test_export_out_ending_in_a_separator_is_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", "sim", "--to", "vensim", "--out", "models_out/"]) == 0
    assert (tmp_path / "models_out").is_dir() and (tmp_path / "models_out" / "sim.mdl").is_file()
    assert cli.main(["export", "sim", "--to", "xmile", "--out", "models_out"]) == 0      # an existing folder
    assert (tmp_path / "models_out" / "sim.xmile").is_file()
    assert cli.main(["export", "sim", "--to", "vensim", "--out", "new/sub/s.mdl"]) == 0   # parents created
    assert (tmp_path / "new" / "sub" / "s.mdl").is_file()
    (tmp_path / "f").write_text("x")
    capsys.readouterr()
    assert cli.main(["export", "sim", "--to", "vensim", "--out", "f/"]) == 1
    one_line_error(capsys, "f is a file, expected a folder")
    assert (tmp_path / "f").read_text() == "x"


def test_output_error_is_an_sdmodel_and_os_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError) as e:
        io.check_out_dir(tmp_path / "f")
    assert isinstance(e.value, SdmodelError) and isinstance(e.value, OSError)
