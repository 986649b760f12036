"""Every documented code block works: the ```python blocks of each page (the README, the docs) run in
order, in one fresh folder per page (at the repository root for a block that reads the project's files
by path), as a reader who pastes them one after the other would; each ```yaml block is valid YAML. A
block after an ``<!-- slow ... -->`` comment runs under ``-m slow`` only."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(<!--[^\n]*-->\n)?```(python|yaml)\n(.*?)\n```", re.S)


def _found(page: Path, kind: str):
    """(line, code, slow) of each ``kind`` block of a page."""
    text = page.read_text()
    return [
        (text[: m.start(2)].count("\n") + 1, m.group(3), bool(m.group(1)) and "slow" in m.group(1))
        for m in BLOCK.finditer(text)
        if m.group(2) == kind
    ]


def _blocks(kind):
    return [
        pytest.param(code, id=f"{page.relative_to(ROOT)}:{line}", marks=[pytest.mark.slow] if slow else [])
        for page in PAGES
        for line, code, slow in _found(page, kind)
    ]


def _pages(slow: bool):
    return [pytest.param(page, id=str(page.relative_to(ROOT))) for page in PAGES
            if any(s == slow for _, _, s in _found(page, "python"))]


def test_the_pages_have_blocks():
    assert len(_blocks("python")) >= 3 and len(_blocks("yaml")) >= 5


def _run_page(page: Path, slow: bool, tmp_path, monkeypatch):
    namespace = {"__name__": "__doc_block__"}
    for line, code, is_slow in _found(page, "python"):
        if is_slow != slow:
            continue
        reads_project = re.search(r'"(calibration|models|studies)/', code) is not None
        monkeypatch.chdir(ROOT if reads_project else tmp_path)   # a block that writes (runs/...) writes into tmp
        if reads_project:
            assert "runs/" not in code, "a block that reads the project's files must not write beside them"
        exec(compile(code, f"{page.name}:{line}", "exec"), namespace)


@pytest.mark.parametrize("page", _pages(slow=False))
def test_python_blocks_of_a_page_run_in_order(page, tmp_path, monkeypatch):
    _run_page(page, False, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages(slow=True))
def test_slow_python_blocks_run(page, tmp_path, monkeypatch):
    _run_page(page, True, tmp_path, monkeypatch)


@pytest.mark.parametrize("text", _blocks("yaml"))
def test_yaml_block_is_valid(text):
    yaml.safe_load(text)
