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
        import sdmodel, sdmodel.model.accounting as a
        def boom(*a, **k):
            raise AssertionError("recompiled")
        a.check_accounting = a.derive = boom
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
    entries = sorted(p.name for p in (tmp_path / "user-cache").glob("*.json"))
    assert len(entries) == 2 and entries[-1].startswith("m_")  # the compiled model, the record of the model's files
    monkeypatch.delenv("SDMODEL_CACHE_DIR")
    assert disk_cache() is None          # the command's cache folder does not outlive it


# --------------------------------------------------------------------------- the record of a model's files
def test_a_record_hit_gives_the_same_model_without_sympy(tmp_path):
    cache = tmp_path / "cache"
    code = """
        import sys
        from sdmodel.engine.cache import cached_model
        from sdmodel import simulate
        m = cached_model("bsr", "japan")
        res = simulate(m, throw=False)
        print("sympy" in sys.modules, "networkx" in sys.modules, repr(float(res.values[-1, 0])))
    """
    first = _run(code, cache)
    assert first.returncode == 0, first.stderr
    second = _run(code, cache)
    assert second.returncode == 0, second.stderr
    assert first.stdout.split()[:2] == ["True", "True"]  # parsed, compiled, recorded
    assert second.stdout.split()[:2] == ["False", "False"]  # read back: no parsing, no compiling
    assert first.stdout.split()[2] == second.stdout.split()[2]


def test_a_recorded_model_equals_the_parsed_one_and_parses_on_first_use(disk):
    from sdmodel.engine.cache import cached_model, stock_roles
    from sdmodel.model.accounting import derive
    from sdmodel.model.spec import symbolic_digest

    parsed = load_model("bsr", "japan")
    cached_model("bsr", "japan")  # records it
    m = cached_model("bsr", "japan")  # read back
    assert type(m.equations).__name__ == "_DeferredMapping"
    assert list(m.equations) == list(parsed.equations) and "Y" in m.equations
    assert stock_roles(m) == derive(parsed).roles
    assert m.transactions.cell_symbols() == parsed.transactions.cell_symbols()
    assert fingerprint(m) == fingerprint(parsed)
    for f in dataclasses.fields(m):  # every field, the deferred ones parsed now (stocks: NaN where an expression)
        if f.name == "stocks":
            np.testing.assert_equal(dict(m.stocks), dict(parsed.stocks))
        else:
            assert getattr(m, f.name) == getattr(parsed, f.name), f.name
    assert m.transactions == parsed.transactions and parsed.balance_sheet == m.balance_sheet
    import pickle

    again = pickle.loads(pickle.dumps(cached_model("bsr", "japan")))  # a process pool's copy: the parsed model
    assert type(again.transactions).__name__ == "Matrix" and fingerprint(again) == fingerprint(parsed)
    assert symbolic_digest(dataclasses.replace(m, equations=dict(parsed.equations))) == symbolic_digest(parsed)


def test_a_recorded_model_changed_in_code_never_gets_the_recorded_code(disk):
    from sdmodel.engine.cache import cached_model

    cached_model("pc")
    m = cached_model("pc")
    assert type(m.transactions).__name__ == "_DeferredMatrix"
    flipped = _flipped(m)
    assert fingerprint(flipped) != fingerprint(m)
    assert fingerprint(flipped) == fingerprint(_flipped(load_model("pc")))
    with pytest.raises(AccountingError):
        compile_model(flipped)
    changed = dataclasses.replace(m, equations={**m.equations, "YD": load_model("pc").equations["YD"] * 2})
    assert fingerprint(changed) != fingerprint(m)


_SIM_CSV = """name: simx
sectors: [households, firms, government]
time: {start: 0, stop: 20, dt: 0.25}
stocks: {Hh: 0, Hs: 0}
parameters: {alpha1: 0.6, alpha2: 0.4, theta: 0.2}
series:
  G: {csv: g.csv, time: t, column: G}
equations:
  Y: C + G
  W: Y
  T: theta * W
  YD: W - T
  C: alpha1 * YD + alpha2 * Hh
balance_sheet:
  Money: {households: +Hh, government: -Hs}
transactions:
  Consumption: {households: -C, firms: +C}
  Government spending: {firms: +G, government: -G}
  Wages: {households: +W, firms: -W}
  Taxes: {households: -T, government: +T}
  Change in money: {households: -d(Hh), government: +d(Hs)}
"""


@pytest.mark.parametrize("edit", ["model", "csv"])
def test_a_changed_byte_of_a_models_files_is_never_the_record(tmp_path, disk, edit):
    from sdmodel.engine.cache import cached_model

    path = tmp_path / "simx" / "model.yaml"
    path.parent.mkdir()
    path.write_text(_SIM_CSV)
    (path.parent / "g.csv").write_text("t,G\n0,20\n20,20\n")
    first = cached_model(path)
    assert cached_model(path) == first
    assert type(cached_model(path).equations).__name__ == "_DeferredMapping"  # read back
    base = simulate(first, throw=False).values[-1]
    if edit == "model":
        path.write_text(_SIM_CSV.replace("theta: 0.2", "theta: 0.25"))
    else:
        (path.parent / "g.csv").write_text("t,G\n0,20\n20,25\n")
    again = cached_model(path)
    assert type(again.equations).__name__ != "_DeferredMapping"  # loaded from its files
    assert again.spec_hash != first.spec_hash
    assert not np.allclose(simulate(again, throw=False).values[-1], base)
    assert type(cached_model(path).equations).__name__ == "_DeferredMapping"  # and recorded again
    assert cached_model(path) == again


def test_a_record_whose_files_change_after_the_load_refuses_to_parse_them(tmp_path, disk):
    from sdmodel.core.errors import SpecError
    from sdmodel.engine.cache import cached_model

    path = tmp_path / "simx" / "model.yaml"
    path.parent.mkdir()
    path.write_text(_SIM_CSV)
    (path.parent / "g.csv").write_text("t,G\n0,20\n20,20\n")
    cached_model(path)
    m = cached_model(path)
    path.write_text(_SIM_CSV.replace("alpha1: 0.6", "alpha1: 0.7"))
    with pytest.raises(SpecError, match="changed after it was loaded"):
        m.equations["Y"]


def test_an_edited_record_is_never_used(disk):
    from sdmodel.engine.cache import cached_model

    cached_model("pc")
    (record,) = disk.glob("m_*.json")
    data = json.loads(record.read_text())
    data["body"] = data["body"].replace('"spec_hash": "', '"spec_hash": "0', 1)  # the body changed, the tag not
    assert data["body"] != json.loads(record.read_text())["body"]
    record.write_text(json.dumps(data))
    with pytest.warns(CacheWarning, match="integrity tag"):
        m = cached_model("pc")
    assert type(m.equations).__name__ != "_DeferredMapping"  # loaded from its files
    assert type(cached_model("pc").equations).__name__ == "_DeferredMapping"  # and recorded again
