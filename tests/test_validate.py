"""The validation toolkit: every reader, and every loader reporting every problem at once with its line."""

from __future__ import annotations

import math

import pytest

from sdmodel.core.errors import ConfigError, SpecError
from sdmodel.model.spec import _read_yaml, load_model, read_parameter_file
from sdmodel.core.validate import Problems, closest, suggestion, to_number


def yaml(text):
    return _read_yaml(text, "t.yaml")


def line_of(text, fragment):
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


# --------------------------------------------------------------------------- to_number
@pytest.mark.parametrize("v, out", [(1, 1.0), (0.25, 0.25), ("1e-3", 0.001), (-2, -2.0)])
def test_to_number_accepts_numbers_and_numeric_text(v, out):
    assert to_number(v) == out


@pytest.mark.parametrize("v", [True, False, None, [1], {"a": 1}, "abc", "yes", float("nan"), math.inf, "-inf"])
def test_to_number_refuses_bools_text_containers_and_non_finite(v):
    with pytest.raises(ValueError):
        to_number(v)


def test_to_number_integer():
    assert to_number(3, integer=True) == 3 and isinstance(to_number(3.0, integer=True), int)
    with pytest.raises(ValueError, match="integer"):
        to_number(1.5, integer=True)
    assert math.isnan(to_number(float("nan"), finite=False))


# --------------------------------------------------------------------------- number
def test_number_good_values_come_back_converted():
    p = Problems()
    assert p.number("a", 2) == 2.0 and isinstance(p.number("a", 2), float)
    assert p.number("a", "2.5e1") == 25.0
    assert p.number("a", 4, integer=True, positive=True) == 4
    assert p.number("a", 0, minimum=0) == 0.0
    assert p.number("a", 0.4, minimum=0.1, maximum=0.4) == 0.4
    assert not p and p.items == []


@pytest.mark.parametrize("v, rules, message", [
    (True, {}, "a: expected a number, got True"),
    ("yes", {}, "a: expected a number, got 'yes'"),
    (None, {}, "a: expected a number, got None"),
    ([1, 2], {}, "a: expected a number, got [1, 2]"),
    (float("nan"), {}, "a: expected a finite number, got nan"),
    (math.inf, {"positive": True}, "a: expected a finite positive number, got inf"),
    (0, {"positive": True}, "a: expected a positive number, got 0"),
    (-1, {"integer": True, "minimum": 0}, "a: expected a whole number >= 0, got -1"),
    (1.5, {"integer": True, "minimum": 0}, "a: expected a whole number >= 0, got 1.5"),
    (0.5, {"minimum": 0.1, "maximum": 0.4}, "a: expected a number in [0.1, 0.4], got 0.5"),
    (7, {"maximum": 5}, "a: expected a number <= 5, got 7"),
    (0, {"positive": True, "what": "time step"}, "a: expected a positive time step, got 0"),
    ("x", {"hint": "parameters are numbers"}, "a: expected a number, got 'x' (parameters are numbers)"),
])
def test_number_bad_values(v, rules, message):
    p = Problems()
    assert p.number("a", v, **rules) is None
    assert p.items == [message]


def test_number_names_the_line():
    text = "search:\n  popsize: 6\n  maxiter: -1\n"
    d = yaml(text)
    p = Problems("c.yaml")
    assert p.number("search.maxiter", d["search"]["maxiter"], d["search"], "maxiter", integer=True, minimum=0) is None
    assert p.items == ["search.maxiter (line 3): expected a whole number >= 0, got -1"]
    # without sub, the line is that of the key's last part
    p.number("search.maxiter", -1, d["search"], integer=True, minimum=0)
    assert p.items[1].startswith("search.maxiter (line 3): ")


# --------------------------------------------------------------------------- pair, interval
def test_pair_and_interval():
    p = Problems()
    assert p.pair("b", [1, "2"]) == (1.0, 2.0)
    assert p.pair("b", [2, 1]) == (2.0, 1.0)            # a pair need not increase
    assert p.interval("w", [0, 40]) == (0.0, 40.0)
    assert p.interval("w", [5, 10], within=(0, 60)) == (5.0, 10.0)
    assert not p
    for bad in ([1], [1, 2, 3], 5, [1, "x"], [1, float("nan")], [True, 2]):
        assert p.pair("b", bad) is None
    assert len(p) == 6 and all("expected [a, b] as two finite numbers" in m for m in p.items)


def test_interval_bad_values():
    p = Problems()
    assert p.interval("window", [40, 0]) is None
    assert p.interval("window", [1, 1]) is None
    assert p.interval("window", [-5, 10], within=(0, 60)) is None
    assert p.interval("theta", [0.4, 0.1], what="[lower, upper]", label="bounds") is None
    assert p.interval("theta", "x", what="[lower, upper]", label="bounds") is None
    assert p.items == [
        "window: inverted or empty range: expected start < stop, got [40, 0]",
        "window: inverted or empty range: expected start < stop, got [1, 1]",
        "window: [-5, 10] is outside [0, 60]",
        "theta: bounds must be [lower, upper] with lower < upper, got [0.4, 0.1]",
        "theta: bounds must be two numbers [lower, upper], got 'x'",
    ]


# --------------------------------------------------------------------------- mapping, keys
def test_mapping_unknown_and_missing_keys_with_suggestions():
    text = "search:\n  popsize: 6\n  maxiters: 3\n"
    d = yaml(text)
    p = Problems()
    s = p.mapping("search", d["search"], d, "search", keys=("popsize", "maxiter"), required=("seed",))
    assert s == {"popsize": 6, "maxiters": 3}
    assert p.items == ["search.maxiters (line 3): unknown key (expected one of popsize, maxiter); "
                       "did you mean 'maxiter'?",
                       "search.seed (line 1): missing (required)"]
    assert Problems().mapping("search", None, keys=("a",)) == {}
    q = Problems()
    assert q.mapping("search", [1], d, "search", keys=("a", "b")) is None
    assert q.mapping("x", None, optional=False, expected="{bounds: [lower, upper]}") is None
    assert q.items == ["search (line 1): expected a mapping with keys a, b, got [1]",
                       "x: expected {bounds: [lower, upper]}, got None"]


def test_unknown_keys_one_problem():
    p = Problems()
    p.unknown_keys("targets.Y", {"weigth": 1, "zz": 2}, ("column", "weight"))
    assert p.items == ["targets.Y: unknown keys ['weigth', 'zz'] (expected column, weight); "
                       "did you mean 'weigth' -> 'weight'?"]


# --------------------------------------------------------------------------- one_of, names
def test_one_of():
    p = Problems()
    assert p.one_of("m", "rk4", ("rk4", "euler")) == "rk4"
    assert p.one_of("m", "rk5", ("rk4", "euler")) is None
    assert p.one_of("k", "lossy", ("loss", "max", "min")) is None
    assert p.one_of("k", True, (True, "x")) is None            # a YAML boolean is never a choice
    assert p.one_of("s", "cubic", ("linear", "previous"), label="interpolation") is None
    assert p.one_of("s", ["a"], ("linear", "previous")) is None
    assert p.items == [
        "m: expected 'rk4' or 'euler', got 'rk5'; did you mean 'rk4'?",
        "k: expected one of 'loss', 'max', 'min', got 'lossy'; did you mean 'loss'?",
        "k: expected True or 'x', got True",
        "s: interpolation must be 'linear' or 'previous', got 'cubic'",
        "s: expected 'linear' or 'previous', got ['a']",
    ]


def test_names_suggest_the_closest_instead_of_listing_everything():
    known = [f"p{i}" for i in range(200)] + ["kappa"]
    p = Problems()
    assert p.name_in("x", "kappa", known) == "kappa"
    assert p.name_in("x", "kapa", known, what="a parameter", of="of model 'bsr'") is None
    assert p.items == ["x: 'kapa' is not a parameter of model 'bsr'; did you mean 'kappa'?"]
    assert p.name_in("x", "zzzzzz", known) is None
    assert len(p.items[1]) < 100 and "201" in p.items[1]
    assert suggestion("q", ["a", "b"]) == " (expected one of a, b)"
    assert closest("alpah1", ["alpha1", "theta"]) == "alpha1" and closest("zz", ["alpha1"]) is None


def test_names_in():
    p = Problems()
    assert p.names_in("v", ["Y", "C", "YDD"], ["Y", "C", "YD"]) == ["Y", "C"]
    assert p.names_in("v", [], ["Y"]) is None
    assert p.names_in("v", "Y", ["Y"]) is None
    assert p.items == ["v: 'YDD' is not a name; did you mean 'YD'?",
                       "v: expected a non-empty list of names, got []",
                       "v: expected a non-empty list of names, got 'Y'"]


@pytest.mark.parametrize("name", ["sim", "sim_discrete", "bsr-2", "v1.2", "Japan_1990", "modèle"])
def test_plain_name_accepts_words(name):
    assert Problems().plain_name("name", name) == name


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "a\\b", "/etc/passwd", "C:\\x", ".hidden", "-x", "",
                                  "a..b", "a b", 1, None, "x" * 101])
def test_plain_name_refuses_paths(name):
    p = Problems()
    assert p.plain_name("name", name, what="model name") is None
    assert p.items[0].startswith(f"name: {name!r} is not a plain model name")


def test_boolean():
    p = Problems()
    assert p.boolean("log", True) is True and p.boolean("log", False) is False
    assert p.boolean("log", "yes") is None and p.boolean("log", 1) is None
    assert p.items == ["log: expected true or false, got 'yes'", "log: expected true or false, got 1"]


def test_raise_if_any_reports_everything_at_once_on_one_line():
    Problems("c.yaml").raise_if_any()      # nothing recorded: nothing raised
    p = Problems("c.yaml", ConfigError)
    p.number("a", "x")
    p.number("b", 0, positive=True)
    p.add("c", "bad\nthing")
    with pytest.raises(ConfigError) as e:
        p.raise_if_any()
    assert isinstance(e.value, SpecError) and isinstance(e.value, ValueError)
    assert len(e.value.problems) == 3 and e.value.source == "c.yaml"
    assert str(e.value).startswith("c.yaml: 3 problems: a: expected a number") and "\n" not in str(e.value)
    with pytest.raises(SpecError) as e:
        p.raise_if_any("other.yaml", SpecError)
    assert type(e.value) is SpecError and str(e.value).startswith("other.yaml: ")


# --------------------------------------------------------------------------- loaders: model, scenario
SIM = (__import__("sdmodel.model.spec").model.spec.builtin_models_dir() / "sim" / "model.yaml").read_text()


def test_model_file_reports_three_bad_numbers_with_their_lines(tmp_path):
    text = SIM.replace("dt: 0.25", "dt: 0").replace("alpha1: 0.6", "alpha1: yes") \
        .replace("stocks: {Hh: 0,", "stocks: {Hh: .nan,")
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as e:
        load_model(path)
    assert e.value.problems == (
        f"time.dt (line {line_of(text, 'dt: 0')}): expected a positive time step, got 0",
        f"stocks.Hh (line {line_of(text, 'stocks:')}): expected a finite number, got nan (an initial value)",
        f"parameters.alpha1 (line {line_of(text, 'alpha1: yes')}): expected a number, got 'yes' "
        "(parameters are numbers; use an equation for an expression)",
    )


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", ".x"])
def test_model_name_that_is_a_path_is_refused(tmp_path, name):
    text = SIM.replace("name: sim", f"name: '{name}'")
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=rf"name \(line {line_of(text, 'name:')}\): .* is not a plain model name"):
        load_model(path)


def test_plain_model_name_and_unnamed_model(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(SIM.replace("name: sim", "name: sim-2.v1"))
    assert load_model(path).name == "sim-2.v1"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.yaml").write_text(SIM.replace("name: sim\n", ""))
    assert load_model(tmp_path / "mine").name == "mine"


def test_scenario_problems_name_the_scenario_file_and_line(tmp_path):
    (tmp_path / "model.yaml").write_text(SIM)
    (tmp_path / "scenarios").mkdir()
    scen = "description: x\nparameters:\n  theta: 0.9\n  alpah1: 0.5\ntime: {dt: -1}\nbogus: 1\n"
    (tmp_path / "scenarios" / "s.yaml").write_text(scen)
    with pytest.raises(SpecError) as e:
        load_model(tmp_path, "s")
    msg = str(e.value)
    assert "parameters.alpah1 (line 4): 'alpah1' is not in the model's parameters; did you mean 'alpha1'?" in msg
    assert "bogus (line 6): unknown key" in msg
    (tmp_path / "scenarios" / "s.yaml").write_text("parameters:\n  theta: 0.9\ntime: {dt: -1}\n")
    with pytest.raises(SpecError) as e:
        load_model(tmp_path, "s")
    assert e.value.problems == ("time.dt (line 3 of s.yaml): expected a positive time step, got -1",
                                "parameters.theta (line 2 of s.yaml): value 0.9 lies outside its bounds [0.1, 0.4]")


def test_parameter_file_reports_every_bad_value(tmp_path):
    p = tmp_path / "p.params.yaml"
    p.write_text("parameters:\n  a: 1\n  b: .inf\n  c: true\nextra: 1\n")
    with pytest.raises(SpecError) as e:
        read_parameter_file(p)
    assert e.value.problems == ("extra (line 5): unknown key (expected one of parameters, provenance)",
                                "parameters.b (line 3): expected a finite number, got inf",
                                "parameters.c (line 4): expected a number, got True")


# --------------------------------------------------------------------------- loaders: calibration
CALIBRATION = """\
model: sim
data: data.csv
time_column: t
window: [0, 40]
targets:
  Y: {weight: 1, log: yes}
parameters:
  alpha1: {bounds: [0.4, 0.9]}
  theta: {bounds: [0.1, 0.3], prior: {dist: normal, loc: 0.2, scale: 0.05, source: a test}, x0: 0.2}
search: {popsize: 0, maxiter: -1, seed: 1.5, tol: -1e-6, local_nfev: true, dt: 0}
penalty_weight: 0
"""


def test_calibration_config_reports_each_bad_setting_with_its_line(tmp_path):
    from sdmodel.estimate.calibration import load_config
    p = tmp_path / "c.yaml"
    p.write_text(CALIBRATION)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    s, t, th = line_of(CALIBRATION, "search:"), line_of(CALIBRATION, "Y: {"), line_of(CALIBRATION, "theta:")
    assert e.value.problems == (
        f"targets.Y.log (line {t}): expected true or false, got 'yes'",
        f"parameters.theta.x0 (line {th}): unknown key (expected one of bounds, prior)",
        f"search.popsize (line {s}): expected a positive whole number, got 0",
        f"search.maxiter (line {s}): expected a whole number >= 0, got -1",
        f"search.seed (line {s}): expected a whole number >= 0, got 1.5",
        f"search.tol (line {s}): expected a number >= 0, got '-1e-6'",
        f"search.local_nfev (line {s}): expected a whole number >= 0, got True",
        f"search.dt (line {s}): expected a positive number, got 0",
        f"penalty_weight (line {line_of(CALIBRATION, 'penalty_weight')}): expected a positive number, got 0",
    )
    assert str(e.value).startswith(f"{p}: 9 problems: ")


def test_calibrate_refuses_bad_starts_and_settings_before_running(tmp_path, monkeypatch):
    import sdmodel.estimate.calibration as cal
    p = tmp_path / "c.yaml"
    p.write_text(CALIBRATION.replace(", log: yes", "").replace(", x0: 0.2", "")
                 .replace("search: {popsize: 0, maxiter: -1, seed: 1.5, tol: -1e-6, local_nfev: true, dt: 0}\n", "")
                 .replace("penalty_weight: 0\n", ""))
    cfg = cal.load_config(p)
    monkeypatch.setattr(cal, "Problem", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(ConfigError) as e:
        cal.calibrate(cfg, search={"seed": 1.5, "maxiter": -1, "popsize": 0}, start="randm",
                      x0={"alpha": 0.5, "theta": 0.35, "alpha1": 0.5})
    assert e.value.problems == (
        "seed: expected a whole number >= 0, got 1.5",
        "maxiter: expected a whole number >= 0, got -1",
        "popsize: expected a positive whole number, got 0",
        "start: expected 'current' or 'random', got 'randm'; did you mean 'random'?",
        "x0.alpha: 'alpha' is not a free parameter of the calibration; did you mean 'alpha1'?",
        "x0.theta: expected a number in [0.1, 0.3], got 0.35 (a start inside its bounds)",
    )


def test_calibration_bounds_beyond_the_model_bounds(tmp_path):
    import pandas as pd

    import sdmodel.estimate.calibration as cal
    p = tmp_path / "c.yaml"
    p.write_text("model: sim\ndata: d.csv\ntime_column: t\nwindow: [0, 10]\ntargets: {Y: {}}\n"
                 "parameters: {theta: {bounds: [0.05, 0.3]}}\n")
    data = pd.DataFrame({"t": range(11), "Y": 100.0})
    with pytest.raises(SpecError, match=r"parameters\.theta\.bounds: \[0\.05, 0\.3\] goes beyond the bounds "
                                        r"\[0\.1, 0\.4\] the model declares for 'theta'"):
        cal.Problem(cal.load_config(p), data=data)


# --------------------------------------------------------------------------- loaders: study, sequencing designs
STUDY = """\
model: sim
solver: {method: rk4, dt: 0}
counterfactual: {theta: 0.9, thetta: 0.2}
outcomes:
  peak: {kind: maxx, variable: Y}
  level: {kind: at, variable: Y, time: 99}
  trough: {kind: min, variable: YDD}
time_varying: {variables: [Y, CC]}
sensitivity:
  chunk_size: 0
  factors:
    theta: {bounds: [0.05, 0.3]}
    alpha1: {around: 0}
    G: {dummy: yes}
"""


def test_study_config_reports_every_problem_with_its_line(tmp_path):
    from sdmodel.study.base import load_study
    p = tmp_path / "st.yaml"
    p.write_text(STUDY)
    with pytest.raises(ConfigError) as e:
        load_study(p)
    ln = lambda frag: line_of(STUDY, frag)  # noqa: E731
    assert e.value.problems == (
        f"solver.dt (line {ln('solver')}): expected a positive step, got 0",
        f"counterfactual.theta (line {ln('counterfactual')}): expected a number in [0.1, 0.4], got 0.9 "
        "(the bounds of 'theta' in the model)",
        f"counterfactual.thetta (line {ln('counterfactual')}): 'thetta' is not a parameter of model 'sim'; "
        "did you mean 'theta'?",
        f"outcomes.peak.kind (line {ln('peak')}): expected one of 'loss', 'multiplier', 'max', 'min', 'mean', 'at', "
        "'first_above', 'time_of_max', 'time_of_min', 'years_below', 'last_below', got 'maxx'; did you mean 'max'?",
        f"outcomes.level.time (line {ln('level')}): expected a time in [0, 60], got 99 (within the run)",
        f"outcomes.trough.variable (line {ln('trough')}): 'YDD' is not an output of model 'sim'; did you mean 'YD'?",
        f"time_varying.variables (line {ln('time_varying')}): 'CC' is not an output of model 'sim'; "
        "did you mean 'C'?",
        f"sensitivity.chunk_size (line {ln('chunk_size')}): expected a positive whole number of runs, got 0",
        f"sensitivity.factors.theta.bounds (line {ln('theta: {bounds')}): the range [0.05, 0.3] goes beyond the "
        "bounds [0.1, 0.4] the model declares for 'theta'",
        f"sensitivity.factors.alpha1.around (line {ln('alpha1: {around')}): expected a positive number, got 0 "
        "(a fraction of the scenario value)",
        f"sensitivity.factors.G.dummy (line {ln('G: {dummy')}): expected true or false, got 'yes'",
    )


SEQUENCE = """\
model: sim
outcomes:
  peak: {kind: max, variable: Y}
sequence:
  ../x:
    families: {a: {vary: {G: [10, 20]}}}
    best: {minimise: peak}
  grid:
    fixed: {alpha2: true}
    families:
      a: {vary: {theta: [0.2, 0.5], alpah1: [0.6]}}
    best: {minimise: peek}
  order:
    kind: order
    policies:
      p: {time: G}
      q: {time: thetaa}
    first: 1990
    spacing: [1, -2]
    best: {minimise: peak}
"""


def test_sequencing_designs_report_every_problem_with_its_line(tmp_path):
    from sdmodel.study.sequencing import load_designs
    from sdmodel.study.base import load_study
    p = tmp_path / "sq.yaml"
    p.write_text(SEQUENCE)
    with pytest.raises(ConfigError) as e:
        load_designs(load_study(p))
    ln = lambda frag: line_of(SEQUENCE, frag)  # noqa: E731
    assert e.value.problems == (
        f"sequence.../x (line {ln('../x')}): '../x' is not a plain design name: use letters, digits, _, - and . "
        "(not first), no path separators or '..', at most 100 characters",
        f"sequence.grid.fixed.alpha2 (line {ln('fixed')}): expected a number, got True",
        f"sequence.grid.families.a.vary.theta[1] (line {ln('a: {vary: {theta')}): expected a number in [0.1, 0.4], "
        "got 0.5 (the bounds of 'theta' in the model)",
        f"sequence.grid.families.a.vary.alpah1 (line {ln('a: {vary: {theta')}): 'alpah1' is not a parameter of "
        "the model; did you mean 'alpha1'?",
        f"sequence.grid.best (line {ln('peek')}): expected {{minimise: outcome}} or {{maximise: outcome}}, optionally "
        "max: {outcome: bound} / min: {outcome: bound} (outcomes: peak); did you mean 'peak'?",
        f"sequence.order.policies.q.time (line {ln('q: {time')}): 'thetaa' is not a timing parameter of the model; "
        "did you mean 'theta'?",
        f"sequence.order.spacing[1] (line {ln('spacing')}): expected a number >= 0, got -2 (years between policies)",
    )
