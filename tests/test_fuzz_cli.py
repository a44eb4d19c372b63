"""A structural fuzzer: hostile YAML worksheets and JSON price maps through the commands that read them.

Each case starts from a real input and applies a few hostile mutations: aliases (shared subtrees, billion-laughs
ladders, self-references), deep nesting, odd keys (non-scalar, non-string, huge, with control characters), odd
scalars (huge integers, NaN/inf, dates real and impossible, binary, bools, tags) and odd names (control
characters, ``$``, rich markup, ``:emoji:`` codes, newlines, very long), consistently renamed or not. The
document is written as YAML flow text (or JSON) by a small emitter that can say all of that, and run through
``validate``, ``compare``, ``export -o``, ``diff`` and ``prices update --from`` / ``diff --prices``.

Every run must: exit 0 or 2; let no exception escape (``result.exception`` is None or SystemExit; no
"Traceback"); finish within a per-case time limit (SIGALRM; a hang guard, not a speed claim); and leave no
output file behind when it fails. ``FUZZ_EXAMPLES`` cases per test by default (a few seconds); the tests marked
slow run ``ROUTECALC_FUZZ_EXAMPLES`` (default 40) each, e.g. ``ROUTECALC_FUZZ_EXAMPLES=2000 pytest -m slow``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from routecalc.cli import app
from routecalc.worksheet import read_yaml
from tests.conftest import WORKSHEETS
from tests.helpers import time_limit

DATA = Path(__file__).resolve().parent / "data"
SUPPORT = WORKSHEETS / "support-triage.yaml"
PRICES_WS = DATA / "ws-prices.yaml"
PRICE_MAP = DATA / "prices-small.json"
FUZZ_EXAMPLES = 12  # per test by default: a few seconds
MANY = int(os.environ.get("ROUTECALC_FUZZ_EXAMPLES", "40"))  # the slow variants; raise it for a long local run
CASE_SECONDS = 60  # far above any case (most take milliseconds): only a hang trips it
runner = CliRunner()


# ---------------------------------------------------------------------------------------------------------
# Hostile nodes, and an emitter for YAML flow text or JSON


@dataclass(frozen=True)
class Raw:
    """Text written as is: a scalar the emitter could not produce from a Python value (a 5,000-digit integer,
    an impossible date, a tag), or any structure (deep nesting)."""

    text: str


@dataclass(frozen=True)
class Anchor:
    name: str
    value: Any


@dataclass(frozen=True)
class Alias:
    name: str


@dataclass(frozen=True, eq=False)  # hashed by identity: it is a dict key here, whatever it holds
class Key:
    """A mapping key that is a list or mapping (YAML only)."""

    value: Any


def emit(v: Any, yaml_mode: bool = True) -> str:
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, Anchor):
        return f"&{v.name} {emit(v.value)}"
    if isinstance(v, Alias):
        return f"*{v.name}"
    if isinstance(v, Key):
        return f"? {emit(v.value)} "
    # one entry per line: PyYAML keeps every pending simple key of a line alive, so one long line parses slowly
    if isinstance(v, dict):
        return "{" + ",\n".join(f"{emit(k, yaml_mode)}: {emit(x, yaml_mode)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",\n".join(emit(x, yaml_mode) for x in v) + "]"
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float) and not math.isfinite(v):
        return (".nan" if math.isnan(v) else ".inf" if v > 0 else "-.inf") if yaml_mode else "NaN"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dt.date):
        return v.isoformat() if yaml_mode else json.dumps(v.isoformat())
    return quoted(str(v))


def quoted(text: str) -> str:
    """A double-quoted string, valid YAML and JSON: control characters, line separators and lone surrogates
    escaped; everything else (emoji included: YAML would not join an escaped surrogate pair) as it is."""
    body = json.dumps(text, ensure_ascii=False)
    return "".join(
        f"\\u{ord(ch):04x}"
        if ch in "\u2028\u2029\ufeff" or 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF
        else ch
        for ch in body
    )


# ---------------------------------------------------------------------------------------------------------
# Strategies

PRINTABLE_ODD_NAMES = st.sampled_from(
    [
        "Tier $ vs $$",
        r"a $\frac{1}{0}$ ${",
        "[bold]x[/bold]",
        "[/]",
        ":smile: :fire:",
        "=cmd|' /C calc'!A0",
        "@SUM(1)",
        "-1+2",
        "x" * 200,
        "模型 🚀",
        "x~2",
        "x-2",
        "x--y",
        "route-x",
        "<script>alert(1)</script>",
        "a|b*c_d`e#",
        "%s %(x)s {0}",
    ]
)  # valid names: the worksheet stays valid and every renderer meets them
ODD_NAMES = st.one_of(
    PRINTABLE_ODD_NAMES,  # and the odd ones: control characters, blank, too long, key-like
    st.sampled_from(
        [
            "a\x1b[31mred",
            "line\nbreak",
            "cr\rhere",
            "sep\u2028x",
            "nul\x00",
            "c1\x85x",
            "bidi\u202ex",
            "",
            " ",
            "x" * 201,
            "y" * 5000,
            "os.environ/SECRET",
            "sk-abcdefghijklmnopqrstuvwx",
        ]
    ),
    st.text(max_size=12),
)
ODD_SCALARS = st.one_of(
    st.sampled_from(
        [
            Raw("9" * 5000),
            Raw("-" + "9" * 400),
            Raw("0x" + "f" * 300),
            Raw("1:" * 60 + "1"),
            Raw("1e999"),
            Raw(".nan"),
            Raw(".inf"),
            Raw("-.inf"),
            Raw("NaN"),
            Raw("2026-13-45"),
            Raw("2026-02-30"),
            Raw("2026-01-01 25:61:00"),
            Raw("!!binary aGVsbG8="),
            Raw("!!int abc"),
            Raw("!!float x"),
            Raw("!!bool maybe"),
            Raw("!!python/object/apply:os.system ['true']"),
            Raw("!!set {a, b}"),
            Raw("!!omap [a: 1, b: 2]"),
            Raw("yes"),
            Raw("off"),
            Raw("~"),
            Raw("0o17"),
            Raw("1_000"),
            "1e-300",
            1e305,
            -1e305,
            10**30,
            -1,
            0,
            True,
            None,
            dt.date(1, 1, 1),
            dt.date(9999, 12, 31),
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    ODD_NAMES,
)
ODD_KEYS = st.one_of(
    st.sampled_from(
        [
            Key([1, 2]),
            Key({"a": 1}),
            Key([]),
            Raw("1"),
            Raw("yes"),
            Raw("~"),
            Raw("2026-01-01"),
            Raw("9" * 500),
            Raw("!!binary aGVsbG8="),
        ]
    ),
    ODD_NAMES,
)


def laughs(levels: int) -> tuple[dict[str, Any], Alias]:
    """A billion-laughs ladder as entries to add to the top mapping, and an alias to its top."""
    entries: dict[str, Any] = {"fz_l0": Anchor("fz0", ["lol"] * 9)}
    for k in range(1, levels + 1):
        entries[f"fz_l{k}"] = Anchor(f"fz{k}", [Alias(f"fz{k - 1}")] * 9)
    return entries, Alias(f"fz{levels}")


def deep(levels: int, inner: Any = 1) -> Raw:
    return Raw("[\n" * levels + emit(inner) + "]" * levels)


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*prefix, i))
    return out


def parent_of(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def rename(doc: dict[str, Any], section: str, index: int, new: str) -> None:
    """Rename a model, category or policy, and every reference to it (so the rest stays consistent)."""
    items = doc.get(section)
    if not isinstance(items, list) or index >= len(items) or not isinstance(items[index], dict):
        return
    old = items[index].get("name")
    if not isinstance(old, str):
        return
    items[index]["name"] = new
    for p in _list(doc.get("policies")):
        if not isinstance(p, dict) or not isinstance(p.get("routes"), dict):
            continue
        if section == "tasks" and old in p["routes"]:
            p["routes"][new] = p["routes"].pop(old)
        if section == "models":
            p["routes"] = {c: _swap(r, old, new) for c, r in p["routes"].items()}
    if section == "models":
        for t in _list(doc.get("tasks")):
            if isinstance(t, dict) and isinstance(t.get("pass_rates"), dict) and old in t["pass_rates"]:
                t["pass_rates"][new] = t["pass_rates"].pop(old)
    if section == "policies" and doc.get("baseline") == old:
        doc["baseline"] = new


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _swap(route: Any, old: Any, new: str) -> Any:
    if route == old:
        return new
    if isinstance(route, list):
        return [_swap(s, old, new) for s in route]
    if isinstance(route, dict) and route.get("model") == old:
        return {**route, "model": new}
    return route


# weighted by repetition: renames to printable odd names and aliases keep the worksheet valid, so the commands
# after validate (compare, export, diff) see odd names too; the rest break it in every way
YAML_MUTATIONS = ["rename-valid"] * 4 + ["alias"] * 2 + ["scalar", "delete", "key", "rename", "laughs", "deep", "self"]
JSON_MUTATIONS = ["scalar", "scalar", "delete", "key", "deep"]


@st.composite
def hostile(draw: st.DrawFn, base: dict[str, Any], yaml_mode: bool = True) -> str:
    """A few hostile mutations of ``base``, emitted as YAML flow text (or JSON)."""
    doc = copy.deepcopy(base)
    top_extra: dict[str, Any] = {}
    anchors = 0
    for _ in range(draw(st.integers(1, 3))):
        all_paths = paths(doc)
        path = draw(st.sampled_from(all_paths))
        parent = parent_of(doc, path)
        kind = draw(st.sampled_from(YAML_MUTATIONS if yaml_mode else JSON_MUTATIONS))
        if kind == "scalar":
            parent[path[-1]] = draw(ODD_SCALARS)
        elif kind == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif kind == "key":
            target = parent if isinstance(parent, dict) else doc
            key = draw(ODD_KEYS) if yaml_mode else draw(ODD_NAMES)
            target[key] = draw(ODD_SCALARS)
        elif kind in ("rename", "rename-valid") and yaml_mode:
            section = draw(st.sampled_from(["models", "tasks", "policies"]))
            names = PRINTABLE_ODD_NAMES if kind == "rename-valid" else ODD_NAMES
            rename(doc, section, draw(st.integers(0, 5)), draw(names))
        elif kind == "alias":  # the same subtree again later: valid YAML, and often a valid worksheet
            later = [q for q in all_paths[all_paths.index(path) + 1 :] if q[: len(path)] != path]
            value = parent[path[-1]]
            if later and not isinstance(value, Anchor | Alias | Raw | Key):
                anchors += 1
                other = draw(st.sampled_from(later))
                parent[path[-1]] = Anchor(f"s{anchors}", value)
                parent_of(doc, other)[other[-1]] = Alias(f"s{anchors}")
        elif kind == "laughs":
            entries, top = laughs(draw(st.integers(2, 12)))
            top_extra.update(entries)
            parent[path[-1]] = top
        elif kind == "deep":
            parent[path[-1]] = deep(draw(st.sampled_from([10, 62, 65, 200, 1000])))
        elif kind == "self":
            anchors += 1
            parent[path[-1]] = Anchor(f"s{anchors}", [1, Alias(f"s{anchors}")])
    if isinstance(doc, dict):
        doc = {**top_extra, **doc}  # anchors before their aliases
    return emit(doc, yaml_mode)


# ---------------------------------------------------------------------------------------------------------
# Running a case


def run(args: list[str], out: Path | None = None) -> int:
    if out is not None:
        out.unlink(missing_ok=True)
    with time_limit(CASE_SECONDS):
        result = runner.invoke(app, args)
    text = result.output
    assert result.exit_code in (0, 2), (args, result.exit_code, text[-2000:], result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in text, (args, text[-2000:])
    if out is not None:
        assert out.exists() == (result.exit_code == 0), (args, "output file on failure" if out.exists() else "")
    return result.exit_code


def worksheet_case(tmp: Path, text: str) -> None:
    path = tmp / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    fast = ["--samples", "1000", "--today", "2026-11-25"]
    if run(["validate", str(path)]) != 0:
        return  # compare, export and diff load it the same way: one look at them is enough
    run(["compare", str(path), *fast[:2]])
    run(["compare", str(path), *fast[:2], "-f", "csv"])
    run(["export", str(path), "-t", "litellm", "-p", "all-to-strongest", "-o", str(tmp / "c.yaml"), "-n", "1000"],
        out=tmp / "c.yaml")  # fmt: skip
    run(["export", str(path), "-t", "json", "-o", str(tmp / "c.json"), "-n", "1000"], out=tmp / "c.json")
    run(["diff", str(SUPPORT), str(path), *fast])


def broken_worksheet_case(tmp: Path, text: str) -> None:
    """A worksheet that fails must fail the same way in every command, writing nothing."""
    path = tmp / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    if run(["validate", str(path)]) == 0:
        return
    for args, out in (
        (["compare", str(path), "-n", "1000"], None),
        (["export", str(path), "-t", "portkey", "-o", str(tmp / "p.json"), "-n", "1000"], tmp / "p.json"),
        (["prices", "update", str(path), "--from", str(PRICE_MAP), "--out", str(tmp / "w.yaml")], tmp / "w.yaml"),
        (["diff", str(path), "--prices", str(PRICE_MAP), "-n", "1000"], None),
    ):
        assert run(args, out) == 2


def price_map_case(tmp: Path, text: str) -> None:
    pm = tmp / "fuzz.json"
    pm.write_text(text, encoding="utf-8")
    run(["prices", "show", "tiny", "--from", str(pm)])
    run(["prices", "update", str(PRICES_WS), "--from", str(pm), "--out", str(tmp / "w2.yaml")], out=tmp / "w2.yaml")
    run(["diff", str(PRICES_WS), "--prices", str(pm), "--samples", "1000", "--today", "2026-11-25"])


BASE_WS = read_yaml(SUPPORT)
BASE_PM = json.loads(PRICE_MAP.read_text())
COMMON = {"deadline": None, "derandomize": True, "database": None, "suppress_health_check": list(HealthCheck)}


@settings(max_examples=FUZZ_EXAMPLES, **COMMON)
@given(text=hostile(BASE_WS))
def test_fuzzed_worksheets(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    tmp = tmp_path_factory.mktemp("ws")
    worksheet_case(tmp, text)
    broken_worksheet_case(tmp, text)


@settings(max_examples=FUZZ_EXAMPLES, **COMMON)
@given(text=hostile(BASE_PM, yaml_mode=False))
def test_fuzzed_price_maps(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    price_map_case(tmp_path_factory.mktemp("pm"), text)


@pytest.mark.slow
@settings(max_examples=MANY, **COMMON)
@given(text=hostile(BASE_WS))
def test_fuzzed_worksheets_many(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    tmp = tmp_path_factory.mktemp("ws")
    worksheet_case(tmp, text)
    broken_worksheet_case(tmp, text)


@pytest.mark.slow
@settings(max_examples=MANY, **COMMON)
@given(text=hostile(BASE_PM, yaml_mode=False))
def test_fuzzed_price_maps_many(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    price_map_case(tmp_path_factory.mktemp("pm"), text)


def test_the_emitter_says_what_the_fuzzer_means() -> None:
    from routecalc.worksheet import parse_yaml

    entries, top = laughs(2)
    text = emit({**entries, "a": Anchor("x", [1, 2]), "b": Alias("x"), "c": top, Key([1]): 1, "d": Raw("2026-01-01")})
    assert text.startswith('{"fz_l0": &fz0 ["lol",\n')
    with pytest.raises(Exception, match="mapping key must be a scalar"):
        parse_yaml(text, "t")
    data = parse_yaml(emit({**entries, "a": Anchor("x", [1, 2]), "b": Alias("x"), "c": top}), "t")
    assert data["b"] == [1, 2] and len(data["c"]) == 9 and data["c"][0][0][0] == "lol"
    assert emit("a\x1b\u2028\x85🚀") == '"a\\u001b\\u2028\\u0085🚀"'
    assert parse_yaml(emit({"k": "a\x1b\u2028\x85🚀"}), "t") == {"k": "a\x1b\u2028\x85🚀"}
