"""``routecalc report``: the files, the self-contained HTML, the Markdown twin, warnings, provenance and the CLI."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import html
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import routecalc
from routecalc.advice import ESCALATION
from routecalc.cli import app
from routecalc.report import build, charts
from routecalc.report.document import Bullets, Document, Paragraph, Strong, md_escape, runs, to_markdown
from tests.conftest import TODAY, WORKSHEETS, shipped_worksheets

runner = CliRunner()
N_CHARTS = len(charts.CHARTS)


@pytest.fixture(scope="module")
def files(support_ws: routecalc.Worksheet, support_cmp: routecalc.Comparison, support_path: Path) -> dict[str, bytes]:
    return build.build_report(support_ws, support_cmp, support_path, "both", generated=TODAY)


@pytest.fixture(scope="module")
def page(files: dict[str, bytes]) -> str:
    return files["report.html"].decode("utf-8")


@pytest.fixture(scope="module")
def markdown(files: dict[str, bytes]) -> str:
    return files["report.md"].decode("utf-8")


def test_files_one_png_and_svg_per_chart(files: dict[str, bytes]) -> None:
    expected = {f"{c.slug}.{ext}" for c in charts.CHARTS for ext in ("png", "svg")} | {"report.html", "report.md"}
    assert set(files) == expected
    assert N_CHARTS == 5
    for c in charts.CHARTS:
        assert files[f"{c.slug}.png"].startswith(b"\x89PNG")
        assert files[f"{c.slug}.svg"].lstrip().startswith(b"<?xml")


def test_html_is_self_contained(page: str, files: dict[str, bytes]) -> None:
    # no resource reference leaves the file: no src=/href=/url() to anything but inline data
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page, flags=re.I)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert not re.search(r"url\(", page)
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    # and no http(s) string at all (the charts are PNG, not SVG with its xmlns)
    assert "http://" not in page and "https://" not in page
    # exactly one embedded image per chart, each the very PNG written beside it
    imgs = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(imgs) == N_CHARTS == page.count("<img")
    assert [base64.b64decode(i) for i in imgs] == [files[f"{c.slug}.png"] for c in charts.CHARTS]


def test_html_names_every_policy_and_the_question(page: str, support_cmp: routecalc.Comparison) -> None:
    text = html.unescape(page)
    for p in support_cmp.policies:
        assert p.name in text
    assert "Support triage" in text and "1,200,000 requests/month" in text and "USD" in text
    assert "<figcaption>" in page and page.count("<figcaption>") == N_CHARTS
    assert '<meta charset="utf-8">' in page and "@media print" in page


def test_markdown_twin_references_existing_pngs(markdown: str, files: dict[str, bytes], page: str) -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert images == [f"{c.slug}.png" for c in charts.CHARTS]
    assert all(i in files for i in images)
    assert "http://" not in markdown and "https://" not in markdown
    # same content: every takeaway and every heading appears in both
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M):
        assert html.escape(heading.replace("\\", "")) in page
    for c in charts.CHARTS:
        assert f"**{c.title}.**" in markdown


def test_recommendation_savings_per_month_and_year(markdown: str, support_cmp: routecalc.Comparison) -> None:
    w = support_cmp.winner_result
    assert w is not None and w.cost_change_monthly is not None and w.cost_change_monthly < 0
    assert f"**Run {md_escape(w.name)}**" in markdown
    monthly = routecalc.format.money(-w.cost_change_monthly, "USD", "/month")
    yearly = routecalc.format.money(-w.cost_change_monthly * 12, "USD", "/year")
    assert f"Saves {monthly} ({yearly}, {-(w.cost_change_pct or 0):.1f}%) vs today" in markdown
    assert "### What it risks" in markdown


def test_side_by_side_table_is_compares(markdown: str, support_cmp: routecalc.Comparison) -> None:
    for label, fmt in routecalc.report.tables.metric_rows(support_cmp):
        row = f"| {md_escape(label)} | " + " | ".join(md_escape(fmt(p)) for p in support_cmp.policies) + " |"
        assert row in markdown


def test_warnings_and_provenance(markdown: str, support_path: Path) -> None:
    # faq was last reviewed 2026-06-01: 177 days before TODAY; the others are within 90 days
    assert "faq: pass rates last reviewed 2026-06-01 — 177 days before 2026-11-25" in markdown
    assert "classify: pass rates last reviewed" not in markdown
    # target misses of every policy, e.g. the baseline misses dispute by 0.01 pp
    assert "today / dispute: quality 89.99% \\< threshold 90.00%" in markdown
    assert "all-to-strongest / classify: P95" in markdown
    sha = routecalc.worksheet.file_sha256(support_path)
    assert sha in markdown
    assert f"routecalc {routecalc.__version__}" in markdown
    assert "seed 7, 100,000 samples" in markdown
    assert "Generated: 2026-11-25" in markdown


def test_appendix_shows_the_winners_router_configs(
    markdown: str, page: str, support_ws: routecalc.Worksheet, support_cmp: routecalc.Comparison, support_path: Path
) -> None:
    """The appendix holds the winner's LiteLLM YAML and Portkey JSON exactly as ``routecalc export`` writes them."""
    import json

    from routecalc.export import export_policy
    from routecalc.export.plan import Source
    from routecalc.worksheet import file_sha256

    source = Source(support_path.name, file_sha256(support_path))
    appendix = markdown[markdown.index("## Appendix: router configs for the winner") :]
    lite = export_policy(support_ws, support_cmp, str(support_cmp.winner), "litellm", source).text
    portkey = export_policy(support_ws, support_cmp, str(support_cmp.winner), "portkey", source).text
    assert f"```yaml\n{lite}```" in appendix and f"```json\n{portkey}```" in appendix
    assert yaml.safe_load(lite)["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert json.loads(portkey)["strategy"]["mode"] == "conditional"
    assert html.escape(lite.splitlines()[0]) in page and '<pre class="code">' in page


def test_appendix_without_a_winner_says_so() -> None:
    from routecalc.report.appendix import router_configs
    from routecalc.report.document import Heading

    class NoWinner:
        winner = None

    blocks = router_configs(None, NoWinner(), None, ())  # type: ignore[arg-type]
    assert blocks[0] == Heading(1, "Appendix: router configs for the winner")
    assert "no winner to export" in str(blocks[1])


def test_generated_date_drives_review_age(support_ws, support_cmp, support_path) -> None:
    doc = build.report_document(support_ws, support_cmp, support_path, generated=dt.date(2026, 6, 2))
    md = to_markdown(doc)
    assert "pass rates last reviewed 2026" not in md
    assert "None: every category was reviewed recently." in md
    assert "Generated: 2026-06-02" in md


def test_assumptions_list_every_input(markdown: str, support_ws: routecalc.Worksheet) -> None:
    for m in support_ws.models:
        assert md_escape(m.name) in markdown
    # token bands as given, with the mean the engine uses; validator rates
    assert "p50 600 / p95 1,500 (mean 701)" in markdown
    assert "| classify | 85.0% | 3.0% |" in markdown
    assert "| dispute | 70.0% | 72.0% | 90.0% | 94.0% |" in markdown
    assert "gpt-4.1-mini \\[gated\\] → claude-sonnet-4" in markdown


def test_same_inputs_same_bytes(support_ws, support_cmp, support_path, files) -> None:
    again = build.build_report(support_ws, support_cmp, support_path, "both", generated=TODAY)
    assert again == files


def test_format_html_or_md_only(support_ws, support_cmp, support_path) -> None:
    doc = build.report_document(support_ws, support_cmp, support_path, TODAY)
    assert len(build.charts.CHARTS) == len([b for b in doc.blocks if type(b).__name__ == "Chart"])
    with pytest.raises(ValueError):
        build.build_report(support_ws, support_cmp, support_path, "pdf")  # type: ignore[arg-type]


def test_markdown_escaping_and_bold() -> None:
    doc = Document("a_b", (Paragraph(runs(Strong("Risk: "), "x|y *z*")), Bullets((runs("<b>"),))))
    md = to_markdown(doc)
    assert "# a\\_b" in md
    assert "**Risk:** x\\|y \\*z\\*" in md
    assert "- \\<b\\>" in md


ESCALATING = """
schema_version: 1
name: Escalation & no winner
currency: EUR
volume: {requests_per_day: 1000}
models:
  - {name: weak, provider: a, price_in: 0.1, price_out: 0.4, latency: {e2e_s: 1.0}}
  - {name: strong, provider: b, price_in: 3, price_out: 15, latency: {e2e_s: {p50: 2, p95: 5}}}
tasks:
  - name: hard
    traffic_share: 1
    tokens_in: 1000
    tokens_out: 100
    quality_threshold: 0.99
    latency_budget_s: 4
    pass_rates: {weak: 0.3, strong: 0.95}
    validator: {catch: 0.9, false_reject: 0.05}
policies:
  - {name: cascade, kind: cascade, routes: {hard: [weak, strong]}}
"""


def test_escalating_cascade_and_no_winner(tmp_path: Path) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text(ESCALATING, encoding="utf-8")
    ws = routecalc.load_worksheet(path)
    cmp = routecalc.compare(ws, samples=20_000, seed=1, today=TODAY)
    assert cmp.winner is None
    warnings = [a.text for a in cmp.advice if a.kind == ESCALATION]
    assert len(warnings) == 1 and warnings[0].startswith("cascade / hard: ")
    assert "straight to strong" in warnings[0]
    esc = cmp.policy("cascade").escalation
    assert esc > 0.4
    md = to_markdown(build.report_document(ws, cmp, path, TODAY))
    assert "**No winner:**" in md
    assert md_escape(warnings[0]) in md
    assert md_escape("Escalation & no winner") in md
    # with no winner the per-category chart shows the baseline (all-to-strongest here)
    assert charts.focus_policy(cmp) == cmp.baseline == "all-to-strongest"


# ---------------------------------------------------------------------------------------------------------
# CLI


@pytest.mark.parametrize("worksheet", shipped_worksheets(), ids=lambda p: p.stem)
def test_cli_report_on_every_shipped_worksheet(worksheet: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["report", str(worksheet), "--out", str(out), "--samples", "20000", "--today", "2026-11-25", "--no-month"],
    )
    assert res.exit_code == 0, res.output
    assert "report.html" in res.output and ("Winner:" in res.output or "No winner" in res.output)
    for c in charts.CHARTS:
        assert (out / f"{c.slug}.png").stat().st_size > 10_000
        assert (out / f"{c.slug}.svg").exists()
    page = (out / "report.html").read_text(encoding="utf-8")
    ws = routecalc.load_worksheet(worksheet)
    extra = 1 if ws.classifiers else 0  # the classifier value curve
    assert page.count("<img") == N_CHARTS + extra and "https://" not in page
    for p in ws.policies:
        assert html.escape(p.name) in page


def test_cli_refuses_foreign_file_then_force_then_rerun(tmp_path: Path, support_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    foreign = out / "report.md"
    foreign.write_text("my notes\n", encoding="utf-8")
    args = ["report", str(support_path), "-o", str(out), "-n", "20000", "--today", "2026-11-25", "-f", "md"]
    res = runner.invoke(app, args)
    assert res.exit_code == 3, res.output
    assert "Traceback" not in res.output
    assert foreign.read_text(encoding="utf-8") == "my notes\n"
    assert not (out / "cost-vs-quality.png").exists()  # refused up front: nothing written

    res = runner.invoke(app, [*args, "--force"])
    assert res.exit_code == 0, res.output
    assert foreign.read_text(encoding="utf-8").startswith("# Routing policy review: Support triage")
    assert not (out / "report.html").exists()

    res = runner.invoke(app, args)  # routecalc's own files: replaced without --force
    assert res.exit_code == 0, res.output


def test_cli_default_out_dir(tmp_path: Path, support_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from routecalc.report.build import default_out_dir

    assert default_out_dir(support_path) == Path("routecalc-report/support-triage")
    assert default_out_dir(Path("x/My Sheet!.yaml")) == Path("routecalc-report/My-Sheet")


def test_cli_bad_worksheet_exit_2(tmp_path: Path, support_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(support_path.read_text(encoding="utf-8"))
    data["tasks"][0]["traffic_share"] = 0.9
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    res = runner.invoke(app, ["report", str(bad), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "traffic_share" in res.output
    assert not (tmp_path / "o").exists()
    res = runner.invoke(app, ["report", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "no such file" in " ".join(res.output.split())


def test_cli_import_does_not_load_matplotlib() -> None:
    code = "import sys, routecalc.cli; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_terminal_category_table_keeps_misses_then_biggest_shares(support_cmp: routecalc.Comparison) -> None:
    """Past ``limit`` categories the terminal table shows the ones some policy misses (by share), then the biggest
    of the rest, in worksheet order; every category is shown up to the limit."""
    from routecalc.report.tables import shown_categories

    cats = support_cmp.policies[0].categories
    n = len(cats)
    assert shown_categories(support_cmp) == list(range(n))  # 5 categories: all shown
    missed = [i for i in range(n) if any(not p.categories[i].ok for p in support_cmp.policies)]
    rest = sorted((i for i in range(n) if i not in missed), key=lambda i: -cats[i].share)
    for limit in range(1, n + 1):
        by_share = sorted(missed, key=lambda i: -cats[i].share) + rest
        assert shown_categories(support_cmp, limit) == sorted(by_share[:limit])


def test_terminal_category_table_says_what_it_leaves_out(
    support_cmp: routecalc.Comparison, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from routecalc.report import tables

    monkeypatch.setattr(tables, "MAX_CATEGORY_ROWS", 2)
    table = tables.category_table(support_cmp)
    assert table.row_count == 2
    console = Console(width=200, record=True)
    console.print(table)
    assert "showing 2 of 5 categories" in console.export_text()


def many_policies_comparison(n: int = 12) -> routecalc.Comparison:
    """The support-triage worksheet with ``n`` more policies: copies of its first one under longer names."""
    data = yaml.safe_load((WORKSHEETS / "support-triage.yaml").read_text(encoding="utf-8"))
    first = data["policies"][0]
    data["policies"] += [first | {"name": f"variant-{i:02d}-of-{first['name']}"} for i in range(n)]
    return routecalc.compare(routecalc.validate_worksheet(data), samples=10_000, seed=1, today=TODAY)


@pytest.mark.parametrize("width", [80, 120, 400])
def test_terminal_tables_fit_the_width(width: int) -> None:
    """Many policies: the side-by-side table comes in blocks of policies that fit the width at their natural
    widths, every cell whole; the per-category table keeps what fits, winner, baseline and all-to-strongest
    first, and says so. Wide enough: one table each, every policy."""
    from rich.console import Console

    from routecalc.report import tables

    c = many_policies_comparison()
    console = Console(width=width, record=True, color_system=None)
    console.print(tables.render_comparison(c))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    blocks = text.count("┃ Metric")
    for p in c.policies:
        assert p.name in text  # every policy has its column somewhere
        assert tables.money(p.monthly_cost, c.currency, "/mo") in text  # cells are never folded
    fits = sum(tables.PolicyBlocks(c).widths) + tables.PolicyBlocks(c).fixed <= width
    assert (blocks == 1) is fits
    assert text.count(c.worksheet) == 1 and text.count("★ = ") == 1  # the title and caption once
    categories = " ".join(text[text.index("Targets by category") :].split())
    shown = tables.CategoryColumns(c).shown(width)
    if fits:
        assert len(shown) == len(c.policies) and "policies:" not in categories
    else:
        assert f"showing {len(shown)} of {len(c.policies)} policies" in categories
        names = [c.policies[i].name for i in shown]
        assert {c.winner, c.baseline} <= set(names)
        assert sum(tables.CategoryColumns(c).widths[i] for i in shown) + tables.CategoryColumns(c).fixed <= width


def test_a_category_monte_carlo_never_drew_leaves_the_intervals_finite() -> None:
    """A category too rare for the sample (share 1e-7 of 10,000 requests) has no Monte Carlo spread: the cost and
    quality intervals cover the categories drawn (compare warns about the rest), never NaN."""
    data = yaml.safe_load((WORKSHEETS / "support-triage.yaml").read_text(encoding="utf-8"))
    rare = copy.deepcopy(data["tasks"][0]) | {"name": "rare", "traffic_share": 1e-7}
    data["tasks"][0]["traffic_share"] -= 1e-7
    data["tasks"].append(rare)
    for policy in data["policies"]:  # routed like the category it copies
        policy["routes"]["rare"] = copy.deepcopy(policy["routes"][data["tasks"][0]["name"]])
    c = routecalc.compare(routecalc.validate_worksheet(data), samples=10_000, seed=1, today=TODAY)
    assert any("drew no request of rare" in w for w in c.warnings)
    for p in c.policies:
        assert np.isfinite(p.cost_ci95) and np.isfinite(p.quality_ci95), p.name
    rare_results = [p.categories[-1] for p in c.policies]
    assert all(r.category == "rare" and not r.latency_ok for r in rare_results)  # unmeasured is not met
    shortfall = rare_results[0].shortfall()
    assert shortfall is not None and "P95 not measured" in shortfall[1] and "nan" not in shortfall[1]
