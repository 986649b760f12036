"""The compile cache: keyed on what is compiled, bounded, and never a way to run foreign code."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import sdmodel
from sdmodel import AccountingError, compile_model, load_model, simulate
from sdmodel.engine.cache import CacheWarning, MemoryCache, memory_cache, set_cache_dir
from sdmodel.engine.compiler import fingerprint


@pytest.fixture
def disk(tmp_path):
    """A private disk cache for one test (and an empty memory cache, as in a new process)."""
    d = tmp_path / "cache"
    set_cache_dir(d)
    memory_cache().clear()
    yield d
    set_cache_dir(None)
    memory_cache().clear()


def _flipped(m, row="Taxes", col="households"):
    tf = m.transactions
    return dataclasses.replace(m, transactions=tf.with_entry(row, col, -tf.rows[row][col]))


def test_new_parameter_values_reuse_the_compiled_code():
    m = load_model("sim")
    a = compile_model(m)
    b = compile_model(m.with_params(theta=0.3))
    assert b.source is a.source                   # the same entry, not a recompilation
    assert b.model.parameters["theta"].value == 0.3
    assert simulate(b)["Y"][-1] == pytest.approx(20 / 0.3, rel=1e-3)


def test_a_model_flipped_in_code_never_gets_the_original_code():
    m = load_model("sim")
    compile_model(m)
    bad = _flipped(m)
    assert fingerprint(bad) != fingerprint(m)
    with pytest.raises(AccountingError, match="Taxes"):
        compile_model(bad)
    assert not compile_model(bad, check=False).report.ok


def test_check_false_then_check_true_still_raises():
    bad = _flipped(load_model("sim"), "Wages", "firms")
    cm = compile_model(bad, check=False)
    assert not cm.report.ok
    with pytest.raises(AccountingError, match="Wages"):
        compile_model(bad)


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_allowing_an_unbalanced_start_is_applied_on_every_hit_whichever_was_compiled_first(where, request):
    """The code and the checks do not depend on allow_unbalanced_start (it is not in the fingerprint); the
    verdict and the gate do, and each compilation gets its own."""
    if where == "disk":
        request.getfixturevalue("disk")
    m = load_model("sim_discrete")
    off = dataclasses.replace(m, stocks={**m.stocks, "Hh": 1.0})  # Money off by 1 at the start
    assert fingerprint(off) == fingerprint(dataclasses.replace(off, allow_unbalanced_start=True))
    allowed = compile_model(off, allow_unbalanced_start=True)
    assert allowed.report.ok and allowed.model.allow_unbalanced_start and any(allowed.from_start)
    if where == "disk":
        memory_cache().clear()  # the next one comes from the disk
    with pytest.raises(AccountingError, match="Money': unbalanced start"):
        compile_model(off)
    plain = compile_model(off, check=False)
    assert not plain.report.ok and not any(plain.from_start)
    with pytest.raises(sdmodel.SimulationError, match="Money' does not sum to zero at t=1 "):
        simulate(plain)
    with pytest.warns(sdmodel.UnbalancedStartWarning, match="'Money' sums to 1"):
        assert simulate(compile_model(off, allow_unbalanced_start=True)).success


def test_an_equation_changed_in_code_compiles_to_its_own_code():
    m = load_model("sim")
    a = compile_model(m)
    eqs = dict(m.equations)
    eqs["Y"] = eqs["Y"] * 1      # same expression: the same entry
    assert fingerprint(dataclasses.replace(m, equations=eqs)) == fingerprint(m)
    import sympy as sp
    eqs["C"] = sp.Symbol("alpha1") * sp.Symbol("YD")     # consumption out of income only
    other = dataclasses.replace(m, equations=eqs)
    cm = compile_model(other, check=False)
    assert cm.source != a.source
    assert simulate(cm)["Y"][-1] != pytest.approx(simulate(a)["Y"][-1])


def test_the_report_is_named_after_the_model_compiled(tmp_path):
    m = load_model("sim")
    compile_model(m)
    twin = dataclasses.replace(_flipped(m), name="twin", source=str(tmp_path / "twin.yaml"))
    with pytest.raises(AccountingError, match="twin.yaml"):
        compile_model(twin)


def test_memory_cache_is_bounded():
    c = MemoryCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1        # a is now the most recently used
    c.put("c", 3)
    assert len(c) == 2 and c.get("b") is None and c.get("a") == 1 and c.get("c") == 3


def test_the_disk_cache_is_off_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("SDMODEL_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    memory_cache().clear()
    compile_model(load_model("sim"))
    assert not (tmp_path / ".cache").exists()


def _run(code, cache_dir):
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_new_process_reuses_the_disk_cache_without_sympy(tmp_path):
    cache = tmp_path / "cache"
    first = _run("import sdmodel; sdmodel.compile_model(sdmodel.load_model('pc'))", cache)
    assert first.returncode == 0, first.stderr
    assert len(list(cache.glob("*.json"))) == 1
    assert oct((cache / "hmac.key").stat().st_mode & 0o777) == "0o600"
    second = _run("""
        import sdmodel, sdmodel.engine.compiler as c
        def boom(*a, **k):
            raise AssertionError("recompiled")
        c.check_accounting = c.derive = boom
        cm = sdmodel.compile_model(sdmodel.load_model('pc'))
        print(cm.report.ok, cm.report.model)
    """, cache)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["True", "pc"]


def _only_entry(d):
    (entry,) = d.glob("*.json")
    return entry


def test_a_tampered_entry_is_not_executed_and_is_recompiled(disk):
    m = load_model("sim")
    good = simulate(compile_model(m))["Y"][-1]
    entry = _only_entry(disk)
    data = json.loads(entry.read_text())
    body = json.loads(data["body"])
    body["source"] = body["source"].replace("return U", "U[:] = U * 2.0\n    return U", 1)
    data["body"] = json.dumps(body, sort_keys=True)     # the old tag no longer matches
    entry.write_text(json.dumps(data))
    memory_cache().clear()
    with pytest.warns(CacheWarning, match="integrity tag does not verify"):
        cm = compile_model(m)
    assert simulate(cm)["Y"][-1] == good


def test_a_planted_entry_never_runs(disk, tmp_path):
    m = load_model("sim")
    compile_model(m)
    entry = _only_entry(disk)
    marker = tmp_path / "pwned"
    source = f"open({str(marker)!r}, 'w').write('x')\ndef _evaluate(*a):\n    pass\ndef _monitor(*a):\n    pass\n"
    body = json.dumps({"schema": 1, "key": entry.stem, "source": source, "meta": {}, "report": {}})
    entry.write_text(json.dumps({"body": body, "tag": "0" * 64}))
    memory_cache().clear()
    with pytest.warns(CacheWarning):
        compile_model(m)
    assert not marker.exists()


@pytest.mark.parametrize("content", ['{"body": "{}", "tag": 5}', "[1, 2, 3]", "not json at all", '{"body": 1}'])
def test_a_corrupt_entry_is_recompiled_with_one_warning(disk, content):
    m = load_model("sim")
    compile_model(m)
    _only_entry(disk).write_text(content)
    memory_cache().clear()
    with pytest.warns(CacheWarning) as rec:
        cm = compile_model(m)
    assert len(rec) == 1
    assert cm.report.ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memory_cache().clear()
        compile_model(m)                  # rewritten: the next load verifies quietly


def test_a_key_others_can_read_disables_the_disk_cache(disk):
    m = load_model("sim")
    compile_model(m)
    os.chmod(disk / "hmac.key", 0o644)
    memory_cache().clear()
    with pytest.warns(CacheWarning, match="not a private file"):
        cm = compile_model(m)
    assert cm.report.ok


def test_set_cache_dir_is_public():
    assert sdmodel.set_cache_dir is set_cache_dir
    assert np.isfinite(simulate(compile_model(load_model("sim")))["Y"][-1])


def test_the_cli_keeps_compiled_models_in_the_user_cache(tmp_path, monkeypatch):
    from sdmodel.engine.cache import disk_cache
    from sdmodel.cli import main
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.chdir(tmp_path)
    memory_cache().clear()
    assert main(["run", "sim", "--no-figure", "--out", "o"]) == 0
    assert len(list((tmp_path / "user-cache").glob("*.json"))) == 1
    monkeypatch.delenv("SDMODEL_CACHE_DIR")
    assert disk_cache() is None          # the command's cache folder does not outlive it
