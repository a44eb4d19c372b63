"""Hostile worksheets, overlays and task tables: every one is an exit-2 message with a location, never a traceback,
a hang, or a silent no-op. Limits are in ``routecalc/limits.py`` and the README section "Input limits"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import routecalc
from routecalc import limits
from routecalc.cli import app
from routecalc.errors import MAX_PROBLEMS, InputError, WorksheetError
from routecalc.worksheet import apply_overlay, load_worksheet, parse_yaml, read_yaml
from tests.conftest import WORKSHEETS
from tests.helpers import time_limit, two_model_sheet

SUPPORT = WORKSHEETS / "support-triage.yaml"
runner = CliRunner()


def problems(text: str) -> dict[str, str]:
    with pytest.raises(WorksheetError) as info:
        parse_yaml(text, "t.yaml")
    return {p.path: p.message for p in info.value.problems}


def support_text() -> str:
    return SUPPORT.read_text(encoding="utf-8")


def billion_laughs(levels: int = 9) -> str:
    """``l0`` holds 9 strings, each ``l<k>`` 9 aliases of ``l<k-1>``: 9^levels strings once expanded."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]" for k in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def validate(path: Path, *extra: str) -> object:
    with time_limit(30):
        return runner.invoke(app, ["validate", str(path), *extra])


def assert_exit_2(result: object, *needles: str) -> None:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert result.exception is None or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    flat = " ".join(result.output.split())  # type: ignore[attr-defined]  # rich wraps at the terminal width
    for n in needles:
        assert n in flat, result.output  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------
# YAML structure


def test_alias_bomb_on_a_failing_field_is_refused_not_expanded(tmp_path: Path) -> None:
    # 9^9 = 387,420,489 strings in `currency` (which must be a 3-letter code): the old error message built the
    # repr of all of them. Now the composed graph is measured before anything is built.
    sheet = tmp_path / "bomb.yaml"
    sheet.write_text(billion_laughs() + support_text().replace("currency: USD", "currency: *l9"))
    result = validate(sheet)
    assert_exit_2(result, "YAML aliases expand the document by", f"at most {limits.MAX_ALIAS_NODES:,}")


def test_aliases_within_the_cap_still_work() -> None:
    # 9^4 = 6,561 strings: a lot of sharing, but far under the cap; anchors are a legitimate YAML feature
    data = parse_yaml(billion_laughs(4), "t.yaml")
    assert len(data["l4"]) == 9 and len(data["l4"][0][0][0]) == 9


def test_recursive_alias_is_refused_with_its_path() -> None:
    got = problems("a: {b: &r [1, *r]}\n")
    assert "refers to a node that contains it" in got["a.b[1]"]


def test_nesting_depth_is_capped_while_parsing() -> None:
    deep = "x: " + "[" * 600 + "]" * 600 + "\n"  # the old loader recursed per level: RecursionError
    got = problems(deep)
    assert any(f"nested more than {limits.MAX_DEPTH} levels deep" in m for m in got.values())
    ok = "x: " + "[" * (limits.MAX_DEPTH - 1) + "]" * (limits.MAX_DEPTH - 1) + "\n"
    assert parse_yaml(ok, "t.yaml")["x"] is not None


@pytest.mark.parametrize(
    ("text", "path", "kind"),
    [
        ("models:\n  - ? [a, b]\n    : 1\n", "models[0]", "list"),
        ("tasks: {x: {? {k: v}\n : 1}}\n", "tasks.x", "mapping"),
        ("? [top]\n: 1\n", "(top)", "list"),
    ],
)
def test_non_scalar_keys_are_refused_with_field_path(text: str, path: str, kind: str) -> None:
    got = problems(text)
    assert f"a mapping key must be a scalar (a name or a number), not a {kind}" in got[path]


@pytest.mark.parametrize(
    ("scalar", "message"),
    [
        ("9" * 5000, "an integer of 5,000 characters"),  # int(): "Exceeds the limit (4300 digits)"
        ("1:" * 80 + "1", "an integer of 161 characters"),  # base-60 integers grow quadratically
        ("2026-13-45", "cannot read '2026-13-45' as timestamp"),  # datetime.date(): ValueError
        ("!!int abc", "cannot read 'abc' as int"),
        ("!!float abc", "cannot read 'abc' as float"),
        ("!!bool maybe", "cannot read 'maybe' as bool"),
        ("!!python/object:os.system x", "could not determine a constructor"),
    ],
)
def test_unreadable_scalars_are_located_errors(scalar: str, message: str) -> None:
    got = problems(f"name: x\nvalue: {scalar}\n")
    (where, msg), *_ = got.items()
    assert where == "line 2, column 8"
    assert message in msg and len(msg) < 400


def test_duplicate_key_message_is_bounded() -> None:
    key = "k" * 100_000  # an explicit key: YAML allows at most 1,024 characters in an implicit one
    got = problems(f"? {key}\n: 1\n? {key}\n: 2\n")
    (msg,) = got.values()
    assert "duplicate key 'kkkk" in msg and "(first on line 1)" in msg and len(msg) < 200


def test_every_repr_in_a_validation_message_is_bounded() -> None:
    sheet = two_model_sheet()
    sheet["models"][0]["price_in"] = "x" * 1_000_000
    sheet["models"][1]["price_in"] = 10**5000  # repr() of this raises ValueError in Python 3.11
    sheet["tasks"][0]["pass_rates"] = {"y" * 1_000_000: 0.5, "small": 0.8, "large": 0.9}
    sheet["baseline"] = "z" * 1_000_000
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet)
    assert all(len(p.path) < 120 and len(p.message) < 400 for p in info.value.problems), info.value.problems
    got = {p.path: p.message for p in info.value.problems}
    assert "(got 'xxxxx" in got["models[0].price_in"]
    assert "(got <an integer of about 5,001 digits>)" in got["models[1].price_in"]
    key = got["tasks[0].pass_rates." + "y" * 37 + "....[key]"]
    assert f"at most {limits.MAX_NAME_CHARS} characters (got 'yyyy" in key


def test_problem_lists_are_capped_with_a_count() -> None:
    sheet = two_model_sheet()
    sheet["tasks"] = [{"x": 1}] * 5_000  # every item misses 8 fields and has an unknown key
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet)
    assert len(info.value.problems) == MAX_PROBLEMS + 1
    assert info.value.problems[-1].message.startswith("... and ")
    assert "more problem(s) not listed" in info.value.problems[-1].message


# ---------------------------------------------------------------------------------------------------------
# Files


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "too-big", "grows"])
def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "w.yaml"
    if kind == "directory":
        path.mkdir()
        needle = "a directory"
    elif kind == "fifo":
        os.mkfifo(path)  # opening it for reading without O_NONBLOCK waits for a writer forever
        needle = "not a regular file"
    elif kind == "device":
        path = Path("/dev/zero")  # never ends
        needle = "not a regular file"
    elif kind == "too-big":
        with path.open("wb") as fh:
            fh.truncate(limits.MAX_WORKSHEET_BYTES + 1)  # sparse: no disk used
        needle = f"at most {limits.MAX_WORKSHEET_BYTES:,} bytes (16 MiB)"
    else:  # a file that grows past the limit after stat: the read itself is bounded
        path.write_bytes(b"x" * 100)
        real = os.fstat

        def small(fd: int) -> os.stat_result:
            st = real(fd)
            return os.stat_result((st.st_mode, *st[1:6], 10, *st[7:]))

        path.write_bytes(b"# " + b"x" * (limits.MAX_WORKSHEET_BYTES + 10))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "fstat", small)
            with time_limit(30), pytest.raises(InputError, match="more than"):
                read_yaml(path)
        return
    result = validate(path)
    assert_exit_2(result, needle)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(support_text().replace("name: Support triage", "name: Caf\xe9").encode("latin-1"))
    assert_exit_2(validate(path), "not UTF-8 (byte 0xe9 on line 3)")


# ---------------------------------------------------------------------------------------------------------
# Overlays


def overlay_file(tmp_path: Path, data: dict, name: str = "what-if.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_problems_name_the_overlay_that_brought_them_in(tmp_path: Path) -> None:
    fine = overlay_file(tmp_path, {"volume": {"requests_per_month": 2_000_000}}, "fine.yaml")
    broken = overlay_file(tmp_path, {"models": [{"name": "gpt-4.1", "price_in": -1}]}, "broken.yaml")
    result = validate(SUPPORT, "--scenario", str(fine), "--scenario", str(broken))
    assert_exit_2(result, f"with scenario {broken}", f"(after scenario {broken})", "models[2].price_in")
    assert f"after scenario {fine}" not in result.output


@pytest.mark.parametrize(
    ("scale", "path", "message"),
    [
        ({"models": {"prce_in": 2}}, "scale.models.prce_in", "unknown model field 'prce_in' (scalable: price_in,"),
        ({"models": {"gpt-4o": {"price_in": 2}}}, "scale.models.gpt-4o", "unknown model 'gpt-4o' (worksheet has:"),
        ({"models": {"provider": 2}}, "scale.models.provider", "field 'provider' is not a number"),
        ({"tasks": {"classify": {"traffic_shar": 2}}}, "scale.tasks.classify.traffic_shar", "unknown category field"),
        ({"models": {"price_in": -1}}, "scale.models.price_in", "a scale factor is a non-negative number (got -1)"),
        ({"models": {"price_in": True}}, "scale.models.price_in", "a scale factor is a non-negative number"),
        ({"models": {"price_in": {"x": 1}}}, "scale.models.price_in", "a scale factor is a non-negative number"),
        ({"modles": {"price_in": 2}}, "scale.modles", "unknown section 'modles'"),
        ({"models": [1]}, "scale.models", "must map fields (or names) to factors"),
    ],
)
def test_scale_typos_are_errors_not_silent_no_ops(tmp_path: Path, scale: dict, path: str, message: str) -> None:
    with pytest.raises(WorksheetError) as info:
        apply_overlay(read_yaml(SUPPORT), {"scale": scale}, "what-if.yaml")
    assert info.value.source == "what-if.yaml"
    got = {p.path: p.message for p in info.value.problems}
    assert message in got[path], got
    result = validate(SUPPORT, "--scenario", str(overlay_file(tmp_path, {"scale": scale})))
    assert_exit_2(result, "what-if.yaml", path)


def test_scale_section_and_per_name_factors_multiply() -> None:
    base = read_yaml(SUPPORT)
    out = apply_overlay(base, {"scale": {"models": {"price_in": 2, "gpt-4.1": {"price_in": 0.5, "rpm": 1.5}}}})
    got = {m["name"]: m["price_in"] for m in out["models"]}
    # every model's price_in x2; gpt-4.1 also x0.5: 2.00 x 2 x 0.5 = 2.00; gpt-4.1-mini 0.40 x 2 = 0.80
    assert got["gpt-4.1"] == pytest.approx(2.0) and got["gpt-4.1-mini"] == pytest.approx(0.8)


def test_scale_multiplies_token_bands_and_keeps_integers_whole() -> None:
    base = two_model_sheet()
    base["models"][0]["context_window"] = 1000
    base["tasks"][0]["tokens_in"] = {"p50": 1000, "p95": 3000}
    out = apply_overlay(base, {"scale": {"tasks": {"tokens_in": 1.5}, "models": {"context_window": 1.25}}})
    assert out["tasks"][0]["tokens_in"] == {"p50": 1500.0, "p95": 4500.0}
    assert out["models"][0]["context_window"] == 1250 and isinstance(out["models"][0]["context_window"], int)
    routecalc.validate_worksheet(out)  # an int field scaled stays an int


# ---------------------------------------------------------------------------------------------------------
# CSV task tables


def csv_sheet(tmp_path: Path, body: bytes) -> Path:
    (tmp_path / "tasks.csv").write_bytes(body)
    sheet = two_model_sheet(tasks="tasks.csv")
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(sheet))
    return path


HEADER = b"name,traffic_share,tokens_in,tokens_out,quality_threshold,pass_rate.small,pass_rate.large\n"


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        (HEADER + b"t,1.0,1000,500,0.9,0.8,0.95\ncaf\xe9,0,1,1,0.9,0.8,0.9\n", ["not UTF-8 (byte 0xe9 on line 3)"]),
        (HEADER + b"t,1.0,1000,500,0.9,0.8,0.95\n" + b"u," + b"9" * 131_073 + b",1,1,0.9,0.8,0.9\n", ["line 3"]),
        (
            HEADER + b"t,1.0,1000,500,0.9,0.8,0.95,extra\n",
            ["tasks[0]", "8 cells but the header has 7 columns", "line 2"],
        ),
        (HEADER + b"t,1.0,1000\n", ["3 cells but the header has 7 columns (tasks.csv line 2)"]),
        (HEADER + b"t,1.0,1000,500,0.9,0.8," + b"9" * 400 + b"\n", ["not a number/date"]),
    ],
)
def test_broken_task_tables_exit_2_with_line_numbers(tmp_path: Path, body: bytes, needles: list[str]) -> None:
    result = validate(csv_sheet(tmp_path, body))
    assert_exit_2(result, *needles)


def test_csv_field_over_the_csv_module_limit(tmp_path: Path) -> None:
    big = b"x" * 131_073  # csv.field_size_limit() is 131,072: csv.Error, a traceback before
    result = validate(csv_sheet(tmp_path, HEADER + b'"' + big + b'",1.0,1000,500,0.9,0.8,0.95\n'))
    assert_exit_2(result, "line 2: cannot read it (a field longer than 131,072 characters)")


@pytest.mark.parametrize("name", ["nul\x00.csv", "x" * 5000 + ".csv", "/dev/zero", ".", "../" * 40])
def test_task_table_paths_that_cannot_be_read(tmp_path: Path, name: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(two_model_sheet(tasks=name)))
    assert_exit_2(validate(path), "tasks")


def test_csv_task_table_that_is_a_fifo(tmp_path: Path) -> None:
    sheet = two_model_sheet(tasks="tasks.csv")
    os.mkfifo(tmp_path / "tasks.csv")
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(sheet))
    assert_exit_2(validate(path), "not a regular file")


def test_load_worksheet_library_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="a directory"):
        load_worksheet(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# The fast YAML reader (plain documents straight from libyaml's events) says what the full reader says

SCALARS = [
    *["yes", "no", "on", "off", "y", "n", "true", "False", "TRUE", "~", "null", "Null", "NULL"],
    *["0", "-0", "+12", "0x1F", "0o17", "017", "0b101", "1_000", "190:20:30", "1e3", "1.5e-3", "-.5"],
    *[".inf", "-.Inf", ".NaN", "6.8523015e+5", "685_230.15"],
    *["2026-01-01", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "2002-12-14T00:00:00Z"],
    "'quoted 1'",
    '"0x1F"',
    "''",
    "plain text",
    "=",
    "<<",
    "!!str 12",
    "&a 1",
]


def full_and_fast(text: str) -> tuple[object, object]:
    from routecalc.worksheet import strict_yaml

    try:
        full: object = strict_yaml._full_load(text, "t")
    except WorksheetError as err:
        full = err
    return full, strict_yaml._fast_load(text)


@pytest.mark.parametrize("scalar", SCALARS)
def test_fast_reader_resolves_scalars_like_the_full_one(scalar: str) -> None:
    from routecalc.worksheet.strict_yaml import _UNREAD

    text = f"a: {scalar}\nb: [{scalar}, {{k: {scalar}}}]\nc:\n- {scalar}\n"
    full, fast = full_and_fast(text)
    if scalar in ("=", "<<", "!!str 12", "&a 1"):
        assert fast is _UNREAD  # a value tag, a merge key, an explicit tag, an anchor: the full reader's job
    else:
        assert repr(fast) == repr(full)  # repr: .nan equals nothing, and True == 1


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key
        "1: x\ntrue: y\n",  # duplicate as Python sees it (True == 1)
        "? [a]\n: 1\n",  # non-scalar key
        "a: &x [1]\nb: *x\n",  # aliases
        "<<: {a: 1}\nb: 2\n",  # merge key
        "a: 1\n---\nb: 2\n",  # two documents
        "a: [1, 2\n",  # bad YAML
        "a: 2026-13-45\n",  # unreadable timestamp
        "a: " + "9" * 5000 + "\n",  # integer too long
        "x: " + "[" * limits.MAX_DEPTH + "]" * limits.MAX_DEPTH + "\n",  # too deep
    ],
)
def test_fast_reader_leaves_every_problem_to_the_full_one(text: str) -> None:
    from routecalc.worksheet.strict_yaml import _UNREAD

    assert full_and_fast(text)[1] is _UNREAD


@pytest.mark.parametrize("text", ["", "---\n", "just a scalar\n", "- 1\n- [2, {}]\n", "{}\n", "a:\nb: ''\n"])
def test_fast_reader_reads_small_documents_like_the_full_one(text: str) -> None:
    full, fast = full_and_fast(text)
    assert repr(fast) == repr(full)


def test_fast_reader_reads_the_example_worksheets_like_the_full_one() -> None:
    paths = sorted(WORKSHEETS.glob("*.yaml"))
    assert paths
    for path in paths:
        full, fast = full_and_fast(path.read_text(encoding="utf-8"))
        assert repr(fast) == repr(full), path


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.text(alphabet="0123456789+-_.:eExobtTyYnN~ ,'\"[]{}&*!#|>?%@`\n", max_size=12), max_size=6))
def test_fast_reader_agrees_with_the_full_one_on_raw_scalars(raw: list[str]) -> None:
    from routecalc.worksheet.strict_yaml import _UNREAD

    text = "".join(f"k{i}: {v}\n" for i, v in enumerate(raw)) + "s:\n" + "".join(f"- {v}\n" for v in raw)
    full, fast = full_and_fast(text)
    if isinstance(full, WorksheetError):
        assert fast is _UNREAD
    elif fast is not _UNREAD:
        assert repr(fast) == repr(full)
