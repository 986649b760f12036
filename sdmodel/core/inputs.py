"""Reading input files a stranger may have made: bounded, regular files only, YAML without alias bombs.

Every loader (model files, scenarios, series CSVs, calibration and study configs,
data CSVs) reads through :func:`read_input` and parses YAML through
:func:`load_yaml`, so that ``/dev/zero`` given as a model, a 10 GB file, a FIFO
or a "billion laughs" YAML of nested aliases ends in one clear error before any
work, instead of a hang or an exhausted memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from sdmodel.core.errors import SpecError

#: The largest input file read (model, scenario, config, CSV): well above any real one.
MAX_BYTES = 64 * 2**20
#: The most YAML nodes a document may expand to once its aliases are followed.
MAX_YAML_NODES = 1_000_000


def shipped_dir(name: str) -> Path:
    """A folder the project ships (``models``, ``calibration``, ``studies``): inside an installed wheel
    (``sdmodel/_shipped/<name>``), else beside the package in a checkout."""
    package = Path(__file__).resolve().parents[1]  # sdmodel/, this file being sdmodel/core/inputs.py
    packaged = package / "_shipped" / name
    return packaged if packaged.is_dir() else package.parent / name


def read_input(
    path: str | os.PathLike, what: str = "input file", *, max_bytes: int = MAX_BYTES, error: type[Exception] = SpecError
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ``error`` (naming the file) otherwise.

    Examples
    --------
    >>> read_input("/dev/zero", "model file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sdmodel.core.errors.SpecError: /dev/zero: the model file is not a regular file (a device, FIFO or socket ...
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{p}: no such {what}") from None
    except OSError as err:
        raise error(f"{p}: the {what} cannot be read ({err.strerror or err})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{p}: the {what} is a folder, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: the {what} is not a regular file (a device, FIFO or socket cannot be read as one)")
    if st.st_size > max_bytes:
        raise error(f"{p}: the {what} has {st.st_size:,} bytes, more than the {max_bytes:,} allowed")
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        raise error(f"{p}: the {what} cannot be read ({err.strerror or err})") from None
    if len(data) > max_bytes:  # it grew while we looked
        raise error(f"{p}: the {what} has more than the {max_bytes:,} bytes allowed")
    return data


def decode_text(data: bytes, source: str, what: str = "file", *, error: type[Exception] = SpecError) -> str:
    """UTF-8 text (a byte-order mark is dropped), or ``error`` naming the first bad byte's line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(
            f"{source}: the {what} is not UTF-8 text (byte {data[err.start]:#04x} on line {line}); save it as UTF-8"
        ) from None


def yaml_nodes(node, limit: int = MAX_YAML_NODES) -> int:
    """How many nodes a composed YAML document expands to, counting each alias as its whole target.

    Shared (anchored) nodes are counted once per reference but measured once, so this is linear in
    the document's size, while the expansion it measures can be exponential.
    """
    memo: dict[int, int] = {}

    def size(n) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        memo[key] = 1  # a recursive alias refers back to itself: count it once
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(size(c) for c in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        memo[key] = min(total, limit + 1)
        return memo[key]

    return size(node) if node is not None else 0


def check_yaml_expansion(
    text: str, source: str, *, limit: int = MAX_YAML_NODES, error: type[Exception] = SpecError
) -> None:
    """Refuse YAML whose aliases expand it beyond ``limit`` nodes (a "billion laughs" document)."""
    if "*" not in text or "&" not in text:  # no alias, or no anchor for one to name: nothing can expand
        return
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml where PyYAML has it
        n = yaml_nodes(node, limit)
    except yaml.YAMLError:
        return  # the loader proper reports the syntax error with its line
    except RecursionError:
        raise error(f"{source}: the YAML is nested too deeply to read") from None
    if n > limit:
        raise error(
            f"{source}: the YAML expands to more than {limit:,} values through its aliases (*name); "
            "write the values out or use fewer nested aliases"
        )


__all__ = [
    "MAX_BYTES",
    "MAX_YAML_NODES",
    "check_yaml_expansion",
    "decode_text",
    "read_input",
    "shipped_dir",
    "yaml_nodes",
]
