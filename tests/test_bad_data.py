"""Hostile data files (issue 23): every reader ends in one one-line error naming file, line or column
and what was expected; nothing is sorted, padded or dropped silently, and no traceback escapes.

Readers: ``sdmodel.data.read_bis_total_credit`` (BIS bulk/flat/long CSVs), ``sdmodel.data.build``
(the shared long files through ``SharedData``), the calibration data load (``Problem``) and
``sdmodel.data.leverage.load_components`` (YAML) and the leverage series check.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdmodel.data import readers as data, leverage
from sdmodel.estimate.calibration import Problem, load_config
from sdmodel.core.errors import DataError, SpecError

from .test_calibration import GOOD as CALIBRATION_CONFIG

FIX = Path(__file__).resolve().parent / "data"
YEARS_1998 = {"japan": range(1998, 1999), "china": range(1998, 1999)}


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


def write(path: Path, content) -> Path:
    """Put ``content`` at ``path``: text, bytes, ``"<devzero>"`` (a symlink to /dev/zero) or ``"<dir>"``."""
    if path.exists() or path.is_symlink():
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    if content == "<devzero>":
        os.symlink("/dev/zero", path)
    elif content == "<dir>":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


needs_devzero = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")

# ----------------------------------------------------------------------------- BIS total credit reader
BIS_HEAD = "FREQ,BORROWERS_CTY,TC_BORROWERS,TC_LENDERS,VALUATION,UNIT_TYPE,TC_ADJUST,TIME_PERIOD,OBS_VALUE\n"
JP = "Q,JP,H,A,M,770,A,"
BIS_CASES = {
    "ragged row": (BIS_HEAD + JP + "1997-Q4,68.0\n" + JP + "1998-Q1\n",
                   r"flat.csv: line 3: 8 cells, expected 9 as in the header \(line 1\)"),
    "empty file": ("", r"flat.csv: the BIS total credit file is empty; expected a header"),
    "header only": (BIS_HEAD, r"flat.csv: the BIS total credit file has a header \(line 1\) but no rows"),
    "non-UTF-8 byte": (BIS_HEAD.encode() + b"Q,JP,H,A,M,770,A,1997-Q4,6\xff8\n",
                       r"flat.csv: the BIS total credit file is not UTF-8 text \(byte 0xff on line 2\)"),
    "text in a numeric column": (BIS_HEAD + JP + "1997-Q4,lots\n",
                                 r"flat.csv: line 2: series Q:JP:H:A:M:770:A, period 1997-Q4: value 'lots'; "
                                 r"expected a number"),
    "inf": (BIS_HEAD + JP + "1997-Q4,inf\n", r"flat.csv: line 2: .*value 'inf' is infinite; expected a finite"),
    "duplicate time": (BIS_HEAD + JP + "1997-Q4,68\n" + JP + "1997-Q4,69\n",
                       r"flat.csv: line 3: series Q:JP:H:A:M:770:A, period 1997-Q4: two observations"),
    "decreasing time": (BIS_HEAD + JP + "1998-Q1,68\n" + JP + "1997-Q4,69\n",
                        r"flat.csv: line 3: .*period 1997-Q4 comes after 1998-Q1 \(line 2\); expected each series "
                        r"in increasing quarters"),
    "/dev/zero via a symlink": ("<devzero>", r"flat.csv: the BIS total credit file is not a regular file"),
    "a folder instead of a file": ("<dir>", r"flat.csv: the BIS total credit file is a folder, expected a file"),
}


@pytest.mark.parametrize("case", list(BIS_CASES))
def test_bis_reader_refuses(tmp_path, case):
    content, expected = BIS_CASES[case]
    if content == "<devzero>" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    p = write(tmp_path / "flat.csv", content)
    with pytest.raises(DataError, match=expected) as e:
        data.read_bis_total_credit(p)
    one_line(e)


def test_bis_csv_col_quarters_out_of_order_name_the_column(tmp_path):
    p = write(tmp_path / "col.csv", "FREQ,BORROWERS_CTY,TC_BORROWERS,TC_LENDERS,VALUATION,UNIT_TYPE,TC_ADJUST,"
                                    "1998-Q1,1997-Q4\nQ,JP,H,A,M,770,A,68.0,67.5\n")
    with pytest.raises(DataError, match=r"col.csv: line 2, column 1997-Q4: .*comes after 1998-Q1 "
                                        r"\(line 2, column 1998-Q1\)") as e:
        data.read_bis_total_credit(p)
    one_line(e)


def test_bis_long_extract_ragged_row_and_zip_holding_two_files(tmp_path):
    p = write(tmp_path / "long.csv", "period,bis_series_key,value\n1997-Q4,Q:JP:H:A:M:770:A,68.0,extra\n")
    with pytest.raises(DataError, match=r"long.csv: line 2: 4 cells, expected 3"):
        data.read_bis_total_credit(p)
    import zipfile
    z = tmp_path / "WS_TC_csv_col.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.csv", "x\n")
        zf.writestr("b.csv", "y\n")
    with pytest.raises(DataError, match=r"WS_TC_csv_col.zip: the zipped BIS total credit file holds 2 files; "
                                        r"expected exactly one CSV"):
        data.read_bis_total_credit(z)
    write(z, b"not a zip")
    with pytest.raises(DataError, match=r"WS_TC_csv_col.zip: the BIS total credit file is not a readable zip"):
        data.read_bis_total_credit(z)


# ----------------------------------------------------------------------------- build: the shared long files
WEO = "imf_weo_JPN_CHN_USA.csv"


def weo_with(text: str, *, value=None, row=None, extra_rows=(), reverse_jp=False):
    """The fixture WEO file with one change."""
    lines = text.splitlines()
    if value is not None:    # set the value of the first JPN govcgdp row (a series the builder reads)
        i = next(i for i, line in enumerate(lines) if ",JPN,govcgdp," in line)
        cells = lines[i].split(",")
        cells[3] = value
        lines[i] = ",".join(cells)
    if row is not None:
        lines.insert(1, row)
    lines += list(extra_rows)
    if reverse_jp:
        idx = [i for i, line in enumerate(lines) if ",JPN,govcgdp," in line]
        for i, line in zip(idx, [lines[j] for j in reversed(idx)]):
            lines[i] = line
    return "\n".join(lines) + "\n"


def _build_cases():
    text = (FIX / "src" / WEO).read_text()
    head = text.splitlines()[0] + "\n"
    jp = [line for line in text.splitlines() if ",JPN,govcgdp," in line]
    return {
        "ragged row": (weo_with(text, row="1998,JPN,govcgdp"), r"imf_weo_JPN_CHN_USA.csv: line 2: 3 cells, "
                                                               r"expected 5 as in the header \(line 1\)"),
        "empty file": ("", r"imf_weo_JPN_CHN_USA.csv: the data file is empty"),
        "header only": (head, r"imf_weo_JPN_CHN_USA.csv: the data file has a header \(line 1\) but no rows"),
        "non-UTF-8 byte": (text.encode() + b"1999,JPN,govcgdp,1\xe9,x\n",
                           r"imf_weo_JPN_CHN_USA.csv: the data file is not UTF-8 text \(byte 0xe9 on line \d+\)"),
        "text in a numeric column": (weo_with(text, value="twelve"),
                                     r"imf_weo_JPN_CHN_USA.csv: line \d+, column value: 'twelve' is not a number; "
                                     r"expected a finite number"),
        "text in the year column": (weo_with(text, row="MCMXCVIII,JPN,govcgdp,1.0,x"),
                                    r"imf_weo_JPN_CHN_USA.csv: line 2, column year: 'MCMXCVIII' is not a number; "
                                    r"expected a year"),
        "inf": (weo_with(text, value="-inf"), r"imf_weo_JPN_CHN_USA.csv: line \d+, column value: '-inf' is infinite"),
        "duplicate time": (weo_with(text, extra_rows=jp[:1]),
                           r"imf_weo_JPN_CHN_USA.csv: line \d+, column year \(WEO JPN govcgdp\): 1997 repeats the "
                           r"year of line \d+; expected each year once, in increasing order"),
        "decreasing time": (weo_with(text, reverse_jp=True),
                            r"imf_weo_JPN_CHN_USA.csv: line \d+, column year \(WEO JPN govcgdp\): 1997 comes after "
                            r"1998 \(line \d+\)"),
        "all-NaN target column": (weo_with(text, value="").replace(
            next(line for line in text.splitlines() if ",JPN,govcgdp," in line and "1998" in line),
            "1998,JPN,govcgdp,,percent_of_GDP"),
            r"imf_weo_JPN_CHN_USA.csv: no values for WEO JPN govcgdp; expected at least one year"),
        "/dev/zero via a symlink": ("<devzero>", r"imf_weo_JPN_CHN_USA.csv: the data file is not a regular file"),
        "a folder instead of a file": ("<dir>", r"imf_weo_JPN_CHN_USA.csv: the data file is a folder, expected a file"),
    }


BUILD_CASES = _build_cases()


@pytest.mark.parametrize("case", list(BUILD_CASES))
def test_build_refuses(tmp_path, case):
    content, expected = BUILD_CASES[case]
    if content == "<devzero>" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    src = tmp_path / "src"
    shutil.copytree(FIX / "src", src)
    write(src / WEO, content)
    with pytest.raises(DataError, match=expected) as e:
        data.build(src, tmp_path / "out", years=YEARS_1998)
    one_line(e)
    assert not (tmp_path / "out").exists()   # nothing written


def test_build_refuses_a_bis_file_that_is_a_device_and_a_source_that_is_a_file(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(FIX / "src", src)
    if os.path.exists("/dev/zero"):
        write(src / "WS_TC_csv_col.csv", "<devzero>")
        with pytest.raises(DataError, match=r"WS_TC_csv_col.csv: the BIS total credit file is not a regular file"):
            data.build(src, tmp_path / "out", years=YEARS_1998)
    with pytest.raises(DataError, match=r"the source folder is a file; expected a folder"):
        data.build(FIX / "src" / WEO, tmp_path / "out", years=YEARS_1998)


# ----------------------------------------------------------------------------- calibration data
CONFIG = CALIBRATION_CONFIG.split("search:")[0]   # the calibration tests' SIM config, without its search
GOOD = "t,Y\n" + "".join(f"{t},{50 + t}.5\n" for t in range(0, 45, 5))
CAL_CASES = {
    "ragged row": (GOOD + "45,1.0,2.0\n", r"data.csv: line 11: 3 cells, expected 2 as in the header \(line 1\)"),
    "empty file": ("", r"data.csv: the data file is empty; expected a header line"),
    "header only": ("t,Y\n", r"data.csv: the data file has a header \(line 1\) but no rows"),
    "non-UTF-8 byte": (GOOD.encode() + b"45,\x80\n",
                       r"data.csv: the data file is not UTF-8 text \(byte 0x80 on line 11\)"),
    "text in a numeric column": (GOOD.replace("10,60.5", "10,sixty"),
                                 r"data.csv: line 4, column Y: 'sixty' is not a number; expected a finite number"),
    "text in the time column": (GOOD.replace("10,60.5", "ten,60.5"),
                                r"data.csv: line 4, column t: 'ten' is not a number; expected a time"),
    "empty time": (GOOD.replace("10,60.5", ",60.5"), r"data.csv: line 4, column t: '' is empty; expected a time"),
    "inf": (GOOD.replace("10,60.5", "10,inf"), r"data.csv: line 4, column Y: 'inf' is infinite"),
    "duplicate time": (GOOD.replace("15,65.5", "10,65.5"),
                       r"data.csv: line 5, column t: 10 repeats the t of line 4; expected each t once, in increasing"),
    "decreasing time": (GOOD.replace("15,65.5", "7,65.5"), r"data.csv: line 5, column t: 7 comes after 10 \(line 4\)"),
    "all-NaN target column": ("t,Y\n0,\n1,NA\n2,\n", r"data.csv: column 'Y' \(target Y\) has no values"),
    "window without data": ("t,Y\n50,1.0\n55,2.0\n", r"data.csv: column 'Y' \(target Y\) has no value in the fit "
                                                     r"window \[0, 40\].*values for t 50 to 55"),
    # the config loader resolves the data path, so the message names the link's target
    "/dev/zero via a symlink": ("<devzero>", r"(data.csv|/dev/zero): the data file is not a regular file"),
    "a folder instead of a file": ("<dir>", r"data.csv: the data file is a folder, expected a file"),
}


@pytest.mark.parametrize("case", list(CAL_CASES))
def test_calibration_data_refuses(tmp_path, case):
    content, expected = CAL_CASES[case]
    if content == "<devzero>" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    (tmp_path / "c.yaml").write_text(CONFIG)
    write(tmp_path / "data.csv", content)
    cfg = load_config(tmp_path / "c.yaml")
    with pytest.raises(DataError, match=expected) as e:
        Problem(cfg)
    one_line(e)


def test_calibration_good_data_and_missing_column(tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG)
    write(tmp_path / "data.csv", GOOD + "\n")    # a trailing blank line is fine
    prob = Problem(load_config(tmp_path / "c.yaml"))
    assert prob.obs["Y"][0].tolist() == list(range(0, 45, 5))
    write(tmp_path / "data.csv", "t,C\n0,1\n")
    with pytest.raises(SpecError, match=r"targets.Y: no column 'Y' in data.csv") as e:
        Problem(load_config(tmp_path / "c.yaml"))
    one_line(e)


# ----------------------------------------------------------------------------- leverage
TABLE_CASES = {
    "empty file": ("", r"t.yaml: expected a mapping with a non-empty 'components' mapping"),
    "non-UTF-8 byte": (b"components:\n  loans: \xff\n", r"t.yaml: the component table is not UTF-8 text "
                                                        r"\(byte 0xff on line 2\)"),
    "bad YAML": ("components: [\n", r"t.yaml: line \d+: not valid YAML"),
    "/dev/zero via a symlink": ("<devzero>", r"t.yaml: the component table is not a regular file"),
    "a folder instead of a file": ("<dir>", r"t.yaml: the component table is a folder, expected a file"),
}


@pytest.mark.parametrize("case", list(TABLE_CASES))
def test_leverage_component_table_refuses(tmp_path, case):
    content, expected = TABLE_CASES[case]
    if content == "<devzero>" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    p = write(tmp_path / "t.yaml", content)
    with pytest.raises(SpecError, match=expected) as e:
        leverage.load_components(p)
    one_line(e)


def test_leverage_refuses_infinite_values():
    q = pd.period_range("2000Q1", periods=5, freq="Q")
    with pytest.raises(SpecError, match=r"gdp_q: gdp is infinite in 2000Q3; expected finite numbers") as e:
        leverage.gdp_4q(pd.Series([100.0, 110, np.inf, 130, 140], index=q, name="gdp"))
    one_line(e)
