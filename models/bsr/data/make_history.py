"""Rebuild history_japan.csv and history_china.csv (1970/1995-2025) from the shared public data files.

Usage::

    python make_history.py SRC_DIR [--out OUT_DIR] [--check]

The logic lives in :mod:`sdmodel.data` (``SharedData``, ``annual_frame``, ``to_csv_text``),
which also builds the calibration target files (``sdmodel data build``); these two files
are the same annual frames over the model's longer span.  SOURCES.md next to this
script documents every column.  With ``--check`` nothing is written and the exit status
says whether the files match.  The model never reads SRC_DIR at run time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdmodel.data.readers import SharedData, annual_frame, to_csv_text

SPANS = {"japan": range(1970, 2026), "china": range(1995, 2026)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="folder with the shared data CSVs (see its SOURCES.md)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where to write the CSVs")
    ap.add_argument("--check", action="store_true", help="compare with the CSVs in --out instead of writing")
    args = ap.parse_args(argv)
    src = SharedData(args.src)
    ok = True
    for country, years in SPANS.items():
        frame, info = annual_frame(src, country, years)
        for k, v in info.items():
            print(f"{k} = {v!r}")
        path, text = args.out / f"history_{country}.csv", to_csv_text(frame).encode("utf-8")
        if args.check:
            same = path.is_file() and path.read_bytes() == text
            print(f"{path.name}: {'identical' if same else 'DIFFERS'}")
            ok &= same
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text)
            print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
