"""Outputs that do not mislead: one sign convention for cost changes, fallback rates only where there is a
fallback, common random numbers, tiny shares as <0.001%, results as DataFrames (CSV, xlsx), report CSS."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import routecalc
from routecalc.chains import compile_worksheet
from routecalc.cli import app
from routecalc.engine.mc import simulate
from routecalc.format import pct
from routecalc.report.tables import comparison_csv, comparison_xlsx, metric_rows

runner = CliRunner()
FAST = ["--samples", "20000", "--today", "2026-11-25"]


def test_cost_change_sign_is_the_same_in_compare_and_diff(support_cmp: routecalc.Comparison) -> None:
    w = support_cmp.winner_result
    base = support_cmp.policy("today")
    assert w is not None and w.cost_change_monthly == pytest.approx(w.monthly_cost - base.monthly_cost)
    assert w.cost_change_monthly < 0  # cheaper than today: a negative change
    rows = dict(metric_rows(support_cmp))
    assert rows["Cost change vs today (USD)"](w).startswith("-$")
    assert rows["Cost change vs today (USD)"](support_cmp.policy("tiered")).startswith("+$")


def test_diff_cost_changes_are_new_minus_old(support_path: Path, tmp_path: Path) -> None:
    pricier = tmp_path / "p.yaml"
    pricier.write_text("scale:\n  models:\n    price_in: 2\n    price_out: 2\n    price_cache: 2\n")
    doc = json.loads(
        runner.invoke(app, ["diff", str(support_path), "--scenario", str(pricier), "-f", "json", *FAST]).stdout
    )
    today = next(p for p in doc["policies"] if p["name"] == "today")
    assert today["cost_change_monthly"] == pytest.approx(
        today["monthly_cost"]["after"] - today["monthly_cost"]["before"]
    )
    assert today["cost_change_monthly"] > 0  # prices doubled: costs more, positive
    tiered = next(p for p in doc["policies"] if p["name"] == "tiered")
    assert tiered["cost_change_vs_baseline_monthly"]["before"] > 0  # tiered costs more than today: positive too


def test_static_policies_show_no_fallback_rate(support_cmp: routecalc.Comparison) -> None:
    rows = dict(metric_rows(support_cmp))
    fallback = rows["Fallback rate (→ next step)"]
    today, fb = support_cmp.policy("today"), support_cmp.policy("tiered+fallback")
    assert not today.fallback_route and today.fallback > 0  # its "fallbacks" are requests given up: in failed
    assert fallback(today) == "none" and fallback(fb) != "none" and fb.fallback_route
    data = support_cmp.to_dict()["policies"]
    assert next(p for p in data if p["name"] == "today")["fallback"] is None


def test_identical_policies_get_identical_monte_carlo_numbers(support_path: Path) -> None:
    sheet = yaml.safe_load(support_path.read_text())
    for name in ("today", "cheap-first"):
        twin = copy.deepcopy(next(p for p in sheet["policies"] if p["name"] == name))
        twin["name"] = f"{name}-twin"
        sheet["policies"].insert(0, twin)  # elsewhere in the order: the draws must not depend on position
    ws = routecalc.validate_worksheet(sheet)
    problem = compile_worksheet(ws)
    for engine in ("numpy", "numba"):
        mc = simulate(problem, 70_000, np.random.default_rng(11), engine=engine)
        for name in ("today", "cheap-first"):
            a, b = problem.chains.names.index(name), problem.chains.names.index(f"{name}-twin")
            assert np.array_equal(mc.hist[a], mc.hist[b])
            for metric in ("quality", "failed", "latency", "escalation"):
                assert np.array_equal(getattr(mc.mean, metric)[a], getattr(mc.mean, metric)[b]), (engine, metric)
            assert np.array_equal(mc.mean.token_cost[a], mc.mean.token_cost[b])


@pytest.mark.parametrize(("value", "text"), [(3.3e-8, "<0.001%"), (0.0001, "0.01%"), (0.5, "50.0%")])
def test_tiny_shares(value: float, text: str) -> None:
    assert pct(value) == text


def test_no_scientific_notation_in_the_comparison_table(support_cmp: routecalc.Comparison) -> None:
    for label, fmt in metric_rows(support_cmp):
        for p in support_cmp.policies:
            assert "e-0" not in fmt(p), (label, p.name)


def test_to_frame_policies_and_categories(support_cmp: routecalc.Comparison) -> None:
    frame = support_cmp.to_frame()
    assert list(frame.index) == [p.name for p in support_cmp.policies]
    assert frame.loc["today", "monthly_cost"] == pytest.approx(support_cmp.policy("today").monthly_cost)
    assert frame["winner"].sum() == 1 and set(frame["currency"]) == {"USD"}
    by_cat = support_cmp.to_frame("category", "quality")
    assert list(by_cat.index) == ["classify", "extract", "faq", "refund", "dispute"]
    assert list(by_cat.columns) == ["share", *[p.name for p in support_cmp.policies]]
    assert by_cat.loc["refund", "today"] == pytest.approx(support_cmp.policy("today").categories[3].quality)
    with pytest.raises(routecalc.InputError):
        support_cmp.to_frame("category", "nope")


def test_csv_is_the_frame(support_cmp: routecalc.Comparison) -> None:
    import pandas as pd

    frame = pd.read_csv(io.StringIO(comparison_csv(support_cmp)))
    assert list(frame["policy"]) == [p.name for p in support_cmp.policies]
    assert frame["cost_change_monthly"].iloc[1] == pytest.approx(support_cmp.policies[1].cost_change_monthly)


def test_xlsx_sheets_and_no_formulas(support_path: Path) -> None:
    import openpyxl

    sheet = yaml.safe_load(support_path.read_text())
    sheet["policies"][1]["description"] = '=HYPERLINK("http://x")'  # text that a spreadsheet would run
    c = routecalc.compare(routecalc.validate_worksheet(sheet), samples=20_000)
    book = openpyxl.load_workbook(io.BytesIO(comparison_xlsx(c)))
    assert book.sheetnames == ["policies", "quality", "cost_per_request", "p95_s", "ok", "about"]
    cells = [cell for ws in book.worksheets for row in ws.iter_rows() for cell in row]
    assert not any(cell.data_type == "f" for cell in cells)
    assert any(cell.value == '=HYPERLINK("http://x")' for cell in cells)  # kept, as text


def test_report_css_numbers_do_not_wrap_tables_scroll_headings_stay(support_ws, support_cmp) -> None:  # type: ignore[no-untyped-def]
    from routecalc.report.build import HTML_NAME, build_report

    html = build_report(support_ws, support_cmp, None, "html")[HTML_NAME]
    html = html.decode() if isinstance(html, bytes) else html
    assert "td.r, th.r { white-space: nowrap;" in html  # number cells are right-aligned ("r") and never wrap
    assert ".table-wrap { overflow-x: auto;" in html and '<div class="table-wrap"><table>' in html
    assert "h1, h2, h3 { break-after: avoid;" in html
    assert '<td class="r">$5,880/mo</td>' in html  # the side-by-side table's money is a number cell
