"""The data behind each report chart, checked against the engines' results (not just that a picture exists)."""

from __future__ import annotations

import numpy as np
import pytest

import routecalc
from routecalc.engine.histogram import HIST_REL_ERROR
from routecalc.report import charts
from tests.conftest import WORKSHEETS

WORKSHEET = WORKSHEETS / "support-triage.yaml"


def brute_force_frontier(points: list[tuple[float, float]]) -> set[int]:
    """Non-dominated points (min cost, max quality), the slow obvious way."""
    out = set()
    for i, (ci, qi) in enumerate(points):
        if not any((cj <= ci and qj >= qi) and (cj < ci or qj > qi) for j, (cj, qj) in enumerate(points) if j != i):
            out.add(i)
    return out


def test_pareto_frontier_by_hand() -> None:
    points = [(1.0, 0.5), (2.0, 0.7), (2.0, 0.6), (3.0, 0.7), (0.5, 0.4), (4.0, 0.9), (2.0, 0.7)]
    # (2, .6) is dominated by (2, .7): same cost, worse quality; (3, .7) by (2, .7): dearer, no better.
    # The duplicates 1 and 6 do not dominate each other. By rising cost: 4 (0.5), 0 (1), 1 and 6 (2), 5 (4).
    assert charts.pareto_frontier(points) == [4, 0, 1, 6, 5]
    assert charts.pareto_frontier([]) == []
    assert charts.pareto_frontier([(1.0, 0.1)]) == [0]


def test_frontier_on_real_comparison_is_the_non_dominated_set(support_cmp: routecalc.Comparison) -> None:
    data = charts.cost_quality(support_cmp)
    points = [(p.monthly_cost, p.quality) for p in support_cmp.policies]
    assert set(data.frontier) == brute_force_frontier(points)
    costs = [points[i][0] for i in data.frontier]
    assert costs == sorted(costs)
    assert data.policies == tuple(p.name for p in support_cmp.policies)
    assert data.winner is not None and data.policies[data.winner] == support_cmp.winner
    tt = support_cmp.problem.tasks
    assert data.threshold == pytest.approx(sum(s * t for s, t in zip(tt.share, tt.threshold, strict=True)))


def test_cost_breakdown_segments_sum_to_monthly_cost(support_cmp: routecalc.Comparison) -> None:
    data = charts.cost_breakdown(support_cmp)
    assert data.by_category.shape == (len(support_cmp.policies), len(data.categories))
    assert np.all(data.by_category >= 0) and np.all(data.by_component >= 0)
    for i, p in enumerate(support_cmp.policies):
        assert data.by_category[i].sum() == pytest.approx(p.monthly_cost, rel=1e-9)
        assert data.by_component[i].sum() == pytest.approx(p.monthly_cost, rel=1e-9)
        for k, cat in enumerate(p.categories):
            expected = cat.cost_per_request * cat.share * support_cmp.requests_per_month
            assert data.by_category[i, k] == pytest.approx(expected, rel=1e-9)
        if "validator" in data.components:
            v = data.by_component[i, data.components.index("validator")]
            assert v == pytest.approx(p.gate_cost_monthly, rel=1e-9, abs=1e-9)
    # the baseline "today" sends everything to gpt-4.1: its whole bill is gpt-4.1 tokens
    today = [p.name for p in support_cmp.policies].index("today")
    assert data.by_component[today, data.components.index("gpt-4.1")] == pytest.approx(
        support_cmp.policy("today").monthly_cost, rel=1e-9
    )


def test_routing_shares_sum_to_one(support_cmp: routecalc.Comparison) -> None:
    data = charts.routing_shares(support_cmp)
    assert data.labels[-2:] == (charts.HUMAN, charts.FAILED)
    np.testing.assert_allclose(data.shares.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    for i, p in enumerate(support_cmp.policies):
        for m, share in p.answered.items():
            assert data.shares[i, data.labels.index(m)] == pytest.approx(share, rel=1e-12)
        assert data.shares[i, -1] == pytest.approx(p.failed, abs=1e-15)
        assert data.shares[i, -2] == pytest.approx(p.human_review, abs=1e-15)
        assert data.escalation[i] == pytest.approx(p.escalation)
        assert data.fallback[i] == pytest.approx(p.fallback if p.fallback_route else 0.0)  # none: no fallback step
    # a static policy never escalates; the "today" baseline answers everything with gpt-4.1 (minus failures)
    today = data.policies.index("today")
    assert data.escalation[today] == 0
    assert data.shares[today, data.labels.index("gpt-4.1")] == pytest.approx(1 - support_cmp.policy("today").failed)


def test_latency_cdf_monotone_and_matches_percentiles(support_cmp: routecalc.Comparison) -> None:
    for p in support_cmp.policies:
        edges, cdf = charts.latency_cdf(support_cmp, p.name)
        assert edges.shape == cdf.shape
        assert cdf[0] == 0 and cdf[-1] == pytest.approx(1.0)
        assert np.all(np.diff(cdf) >= 0)
        for q, expected in ((0.5, p.p50_s), (0.95, p.p95_s), (0.99, p.p99_s)):
            assert charts.cdf_quantile(edges, cdf, q) == pytest.approx(expected, rel=2 * HIST_REL_ERROR)


def test_category_view_status_agrees_with_targets(support_cmp: routecalc.Comparison) -> None:
    for p in support_cmp.policies:
        rows = charts.category_view(support_cmp, p.name)
        assert [r.category for r in rows] == [c.category for c in p.categories]
        assert sum(r.monthly_cost for r in rows) == pytest.approx(p.monthly_cost, rel=1e-9)
        for r, cat in zip(rows, p.categories, strict=True):
            assert (r.quality_status == "miss") == (not cat.quality_ok)
            assert (r.latency_status == "miss") == (not cat.latency_ok)
            assert r.quality_margin_pp == pytest.approx((cat.quality - cat.threshold) * 100)
    assert charts.focus_policy(support_cmp) == support_cmp.winner


def test_label_clusters_groups_overlapping_points() -> None:
    # 0 and 2 sit on top of each other; 1 is far away
    groups = charts.label_clusters(np.array([10.0, 50.0, 10.2]), np.array([0.9, 0.5, 0.9]), (0, 100), (0, 1))
    assert sorted(map(sorted, groups)) == [[0, 2], [1]]


def test_figures_have_titles_labels_and_worksheet_name(support_cmp: routecalc.Comparison) -> None:
    for spec in charts.CHARTS:
        fig = spec.draw(support_cmp)  # type: ignore[operator]
        assert support_cmp.worksheet in fig._suptitle.get_text()
        for ax in fig.axes:
            if ax.axison:
                assert ax.get_xlabel(), (spec.slug, "x label")
        png = charts.figure_bytes(fig, "png")
        assert png.startswith(b"\x89PNG")
        svg = charts.figure_bytes(fig, "svg")
        assert b"<svg" in svg and b"<dc:date>" not in svg


def test_each_chart_is_laid_out_once_and_drawn_once_per_format(
    support_cmp: routecalc.Comparison, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from routecalc.report.build import build_report

    counts = {"layout": 0, "draw": 0}
    real_execute, real_draw = ConstrainedLayoutEngine.execute, Figure.draw

    def execute(self, fig):  # type: ignore[no-untyped-def]
        counts["layout"] += 1
        return real_execute(self, fig)

    def draw(self, renderer):  # type: ignore[no-untyped-def]
        counts["draw"] += 1
        return real_draw(self, renderer)

    monkeypatch.setattr(ConstrainedLayoutEngine, "execute", execute)
    monkeypatch.setattr(Figure, "draw", draw)
    files = build_report(routecalc.load_worksheet(WORKSHEET), support_cmp, None, "md")
    n = len(charts.CHARTS)
    assert sum(name.endswith((".png", ".svg")) for name in files) == 2 * n
    # one constrained layout per chart; one draw for the PNG (Agg) and one for the SVG. A savefig per format
    # used to cost 2 layouts and 4 draws per chart (each savefig draws a layout pre-pass, then renders).
    assert counts == {"layout": n, "draw": 2 * n}


ODD_NAMES = ["Tier $ vs $$", r"a $\frac{1}{0}$ b ${", "$$", r"\$x$", "[bold]x", "_{sub}^sup"]


def test_names_with_dollars_and_tex_are_drawn_literally(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from routecalc.report.build import build_report

    data = yaml.safe_load(WORKSHEET.read_text())
    for p, name in zip(data["policies"], ODD_NAMES, strict=False):
        p["name"] = name
    data["baseline"] = ODD_NAMES[0]
    data["tasks"][0]["name"] = "$x$ cat"
    for p in data["policies"]:
        p["routes"]["$x$ cat"] = p["routes"].pop("classify")
    ws = routecalc.validate_worksheet(data, "odd")
    cmp = routecalc.compare(ws, samples=2000, seed=1)
    files = build_report(ws, cmp, None, "md")  # a name with two "$" raised a mathtext ParseFatalException
    assert files["cost-vs-quality.png"].startswith(b"\x89PNG")
    fig = charts.cost_quality_figure(cmp)
    with charts.chart_rc():  # as when it is drawn: tick labels are made lazily, under the same rcParams
        texts = fig.findobj(lambda o: hasattr(o, "get_parse_math"))
    shown = [t.get_text() for t in texts]
    assert any(ODD_NAMES[1] in s for s in shown)
    assert all(t.get_parse_math() is False and not t.get_usetex() for t in texts)


def test_takeaway_names_the_winner_rule(support_ws: routecalc.Worksheet) -> None:
    c = routecalc.compare(support_ws, samples=20_000, seed=7, objective="cost+risk")
    assert (
        "is the policy with the lowest spend + operational risk meeting every target" in charts.takeaway_cost_quality(c)
    )


def test_cost_quality_chart_draws_the_optimizer_frontier(support_ws, support_cmp) -> None:
    from routecalc.report.build import achievable_frontier_chart

    af = achievable_frontier_chart(support_ws)
    assert af is not None and af.label.startswith("achievable frontier (routecalc optimize")
    fig = charts.cost_quality_figure(support_cmp, af)
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == af.label]
    assert len(lines) == 1
    _, y = lines[0].get_data()
    assert set(np.asarray(y)) <= set(af.quality)  # the drawn corners are frontier points (within the cost range)
    plain = charts.cost_quality_figure(support_cmp)
    assert not [ln for ln in plain.axes[0].get_lines() if ln.get_label() == af.label]
