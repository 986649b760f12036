"""Run-directory manifests: one typed reader for every kind, a schema version, unknown keys kept."""

import json

import pytest

import sdmodel
from sdmodel.core.errors import ManifestError
from sdmodel.report.rundirs import write_run
from sdmodel.core.manifest import (
    KINDS,
    SCHEMA_VERSION,
    CalibrationManifest,
    Manifest,
    RunManifest,
    SensitivityManifest,
    SequenceManifest,
    manifest_kind,
    read_manifest,
)


def test_a_run_directory_reads_back_as_its_typed_manifest(tmp_path):
    model = sdmodel.load_model("sim")
    res = sdmodel.simulate(model)
    write_run(tmp_path / "r", model, res, command=["sdmodel", "run", "sim"], seed=3)
    man = read_manifest(tmp_path / "r")
    assert isinstance(man, RunManifest) and man.kind == "run"
    assert man.model == "sim" and man.seed == 3 and man.success
    assert man.parameters["theta"] == 0.2 and man.command == ("sdmodel", "run", "sim")
    assert man.spec_hash == model.spec_hash and man.schema == SCHEMA_VERSION
    assert man.what == "sim" and man.headline.endswith("ok")
    raw = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert raw["kind"] == "run" and raw["schema"] == SCHEMA_VERSION


@pytest.mark.parametrize("typ", list(KINDS.values()))
def test_every_kind_round_trips_through_json(typ):
    man = typ(command=("x",), created="2026-01-01T00:00:00+00:00", versions={"sdmodel": "0"},
              extra={"from_a_newer_version": [1, 2]})
    back = Manifest.from_dict(json.loads(man.to_json()), "m.json")
    assert type(back) is typ and back == man


def test_keys_the_type_does_not_know_are_kept_and_written_back(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "sequence", "study": "s.yaml", "note": "hi"}))
    man = read_manifest(tmp_path)
    assert isinstance(man, SequenceManifest) and man.extra == {"note": "hi"}
    assert man.to_dict()["note"] == "hi"


def test_a_manifest_without_kind_or_schema_is_an_early_run(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"model": "sim", "success": True}))
    man = read_manifest(tmp_path)
    assert isinstance(man, RunManifest) and man.model == "sim" and man.schema == SCHEMA_VERSION


@pytest.mark.parametrize("content,match", [
    (None, "not an sdmodel run directory"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"kind": "painting"}', "unknown kind 'painting'"),
    (json.dumps({"kind": "run", "schema": SCHEMA_VERSION + 1}), "newer than this sdmodel reads"),
    ('{"kind": "run", "model": "sim", "bogus_field": 1, "success": true}', None),
])
def test_unreadable_manifests_get_one_clear_error(tmp_path, content, match):
    if content is not None:
        (tmp_path / "manifest.json").write_text(content)
    if match is None:
        assert read_manifest(tmp_path).extra == {"bogus_field": 1}
        return
    with pytest.raises(ManifestError, match=match):
        read_manifest(tmp_path)
    assert manifest_kind(tmp_path) is None


def test_the_manifest_types_are_frozen():
    man = CalibrationManifest(model="bsr")
    with pytest.raises(AttributeError):
        man.model = "sim"
    assert {SensitivityManifest.kind, SequenceManifest.kind} == {"sensitivity", "sequence"}


def test_runs_lists_an_unreadable_manifest_with_its_reason(tmp_path):
    from sdmodel.report.views import list_runs
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "manifest.json").write_text('{"kind": "painting"}')
    model = sdmodel.load_model("sim")
    write_run(tmp_path / "b", model, sdmodel.simulate(model))
    rows = {r["path"].split("/")[-1]: r for r in list_runs(tmp_path)}
    assert rows["a"]["kind"] == "?" and "unknown kind 'painting'" in rows["a"]["what"]
    assert rows["b"]["kind"] == "run" and rows["b"]["headline"].endswith("ok")


# ---------------------------------------------------------------- provenance and warnings
def test_provenance_and_warnings_round_trip(tmp_path):
    from sdmodel.core.manifest import ValidationManifest, file_sha256, provenance
    f = tmp_path / "model.yaml"
    f.write_bytes(b"name: x\n")
    prov = provenance([f, f, tmp_path / "missing.csv"])  # each once; a file that is not there is not hashed
    assert prov["sdmodel"] == sdmodel.__version__
    assert prov["files"] == {str(f): file_sha256(f)} and len(file_sha256(f)) == 64
    man = RunManifest(model="x", provenance=prov, warnings=("beyond the data",))
    back = Manifest.from_dict(json.loads(man.to_json()), "m.json")
    assert back == man and back.warnings == ("beyond the data",) and back.extra == {}
    assert KINDS["validation"] is ValidationManifest  # read back as its type, not refused as unknown


def _git(cwd, *args):
    import subprocess
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_git_commit_of_a_checkout_and_silence_elsewhere(tmp_path):
    import shutil

    from sdmodel.core.manifest import git_commit
    assert git_commit(tmp_path) == {}  # not a repository
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.py").write_text("x = 1\n")
    (repo / "venv").mkdir()
    _git(repo, "init", "-q")
    _git(repo, "add", "pkg")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(repo, "rev-parse", "HEAD")
    assert git_commit(repo / "pkg") == {"git_commit": head}
    (repo / "pkg" / "a.py").write_text("x = 2\n")
    assert git_commit(repo / "pkg") == {"git_commit": head, "git_dirty": True}
    assert git_commit(repo / "venv") == {}  # inside a checkout, but not tracked by it (an installed wheel)
