"""The example worksheets shipped inside the package, so ``pip install routecalc`` alone can run one.

``routecalc compare example:support-triage`` reads ``routecalc/examples/support-triage.yaml`` (package data; in
a clone of the repository ``routecalc/examples`` is a link to ``worksheets/``, the same files). ``routecalc
examples`` lists them, one line each: the first comment line of the file says what it shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from routecalc.errors import InputError

PREFIX = "example:"
_NAME = re.compile(r"^name:\s*(.+?)\s*$", re.MULTILINE)


def examples_dir() -> Path:
    """Where the example worksheets are (inside the installed package)."""
    return Path(__file__).resolve().parent / "examples"


@dataclass(frozen=True)
class Example:
    name: str  # what follows "example:"
    title: str  # the worksheet's own name
    description: str  # the file's first comment line
    path: Path


def _describe(path: Path) -> Example:
    text = path.read_text(encoding="utf-8")
    block = []
    for line in text.splitlines():  # the opening comment block, up to its first sentence
        if not line.startswith("#") or not line.strip("# "):
            if block:
                break
            continue
        block.append(line.lstrip("#").strip())
    words = " ".join(block)
    end = words.find(". ")
    title = _NAME.search(text)
    return Example(
        name=path.stem,
        title=title.group(1).strip("'\"") if title else path.stem,
        description=words if end < 0 else words[: end + 1],
        path=path,
    )


def list_examples() -> list[Example]:
    """Every shipped example worksheet, by name."""
    return [_describe(p) for p in sorted(examples_dir().glob("*.yaml"))]


def is_example(spec: str | Path) -> bool:
    return str(spec).startswith(PREFIX)


def resolve(spec: str | Path) -> Path:
    """``example:NAME`` -> the shipped file; anything else unchanged. An unknown NAME lists the known ones."""
    text = str(spec)
    if not text.startswith(PREFIX):
        return Path(spec)
    name = text[len(PREFIX) :].removesuffix(".yaml")
    path = examples_dir() / f"{name}.yaml"
    if "/" in name or "\\" in name or not path.is_file():
        known = ", ".join(e.name for e in list_examples())
        raise InputError(f"no example worksheet {name!r} (examples: {known}; list them with: routecalc examples)")
    return path
