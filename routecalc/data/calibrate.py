"""Worksheet numbers from eval rows: per category and model the pass rate with its counts, the joint outcome table,
token bands; per model the end-to-end latency. Pure: takes :class:`~routecalc.data.evals.EvalData`, returns
frozen dataclasses; writing YAML is ``calibrate_yaml``.

Choices (README, "calibrate evals"):

* A category's **outcome table** covers the catalog models with at least one outcome in it (when there are two or
  more) and only the prompts on which every one of them has an outcome; the pass rates of those models are counted
  on the same prompts, so the table and the pass rates agree exactly. Prompts missing some model's outcome are left
  out of both and counted (``left_out``). A model alone in its category gets a pass rate over all its outcomes.
* Up to :data:`FULL_TABLE_MODELS` models, every pass/fail pattern is written, zero counts included (a Dirichlet
  over the table then sees every pattern); above, only the patterns that occur.
* **Token bands** pool every (prompt, model) value of the category: p50 and p95 (linear interpolation), 4
  significant digits. **Latency** per model: p50/p95 of its ``latency_s`` over all categories, as ``e2e_s``.
* Categories with fewer than :data:`MIN_PROMPTS` prompts are flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from routecalc.data.evals import EvalData, RowReport
from routecalc.worksheet.schema import MAX_SPREAD, MAX_TABLE_MODELS

MIN_PROMPTS = 30
FULL_TABLE_MODELS = 4  # up to 2^4 = 16 patterns, every pattern is written (zeros included)
SIGNIFICANT = 4  # token bands and latencies are rounded to this many significant digits


@dataclass(frozen=True)
class BandFit:
    """A quantity's p50/p95 (or, when no lognormal band fits, a fixed ``mean``), and how many values gave it."""

    p50: float | None
    p95: float | None
    mean: float | None
    n: int

    def as_yaml(self) -> dict[str, float] | float:
        if self.mean is not None:
            return self.mean
        return {"p50": float(self.p50), "p95": float(self.p95)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class CategoryCalibration:
    """One category's numbers. ``pass_counts``: catalog model -> (passed, of)."""

    name: str
    prompts: int
    pass_counts: dict[str, tuple[int, int]]
    table_models: tuple[str, ...]
    patterns: tuple[tuple[tuple[str, ...], int], ...]  # (models that passed, count), table model order
    left_out: int  # prompts left out of the table: some table model has no outcome on them
    tokens_in: BandFit | None
    tokens_out: BandFit | None
    joint: str = "table"  # what to write: the table, a fitted correlation, or nothing (independent)
    correlation: float | None = None  # fitted when joint == "correlation"

    @property
    def table_prompts(self) -> int:
        return sum(c for _, c in self.patterns)


@dataclass(frozen=True)
class Calibration:
    """Everything calibration found. ``models``: catalog names in eval order; ``eval_names``: catalog -> eval."""

    source: str
    models: tuple[str, ...]
    eval_names: dict[str, str]
    categories: tuple[CategoryCalibration, ...]
    latency: dict[str, BandFit]  # catalog model -> e2e latency (seconds)
    report: RowReport
    has_tokens_in: bool
    has_tokens_out: bool
    has_latency: bool

    @property
    def small(self) -> list[tuple[str, int]]:
        """Categories with fewer than MIN_PROMPTS prompts, and their counts."""
        return [(c.name, c.prompts) for c in self.categories if c.prompts < MIN_PROMPTS]

    @property
    def total_prompts(self) -> int:
        return sum(c.prompts for c in self.categories)

    def category(self, name: str) -> CategoryCalibration:
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(name)


def _round(x: float) -> float:
    """4 significant digits, as a float that prints short (812.5, not 812.5000000001)."""
    return float(f"{x:.{SIGNIFICANT}g}")


def band_fit(values: np.ndarray) -> BandFit | None:
    """p50/p95 of the finite values (None if there are none); a fixed mean when no worksheet band fits them.

    A band needs p50 > 0 and p95 <= 1000 x p50 (the worksheet's units-typo guard); otherwise the mean is written.
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    p50, p95 = (_round(q) for q in np.percentile(v, [50, 95]))
    if p50 > 0 and p95 <= MAX_SPREAD * p50:
        return BandFit(p50, p95, None, int(v.size))
    return BandFit(None, None, _round(float(v.mean())), int(v.size))


def fit_correlation(cat: CategoryCalibration) -> float | None:
    """The latent-difficulty correlation rho in [0, 0.999] that best reproduces a category's table.

    Least squares over every pair of table models of ``P(both fail)`` (given their marginals, that number is
    the whole pairwise table; for two models the fit is exact unless the table is less correlated than
    independence, where rho = 0). The latent model's pair probability is computed with the engines' own
    quadrature (:func:`routecalc.outcomes.latent_nodes`), and rho found by bounded Brent search (scipy).
    None without a table.
    """
    if len(cat.table_models) < 2 or cat.table_prompts == 0:
        return None
    from scipy.optimize import minimize_scalar
    from scipy.special import ndtri

    from routecalc.outcomes import latent_nodes, latent_q
    from routecalc.worksheet.schema import MAX_CORRELATION

    k = len(cat.table_models)
    total = cat.table_prompts
    passed = np.zeros((len(cat.patterns), k), dtype=bool)
    counts = np.array([c for _, c in cat.patterns], dtype=float)
    for i, (models, _) in enumerate(cat.patterns):
        passed[i] = [m in models for m in cat.table_models]
    q = (counts @ passed) / total
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    empirical = np.array([counts[~passed[:, i] & ~passed[:, j]].sum() / total for i, j in pairs])
    with np.errstate(invalid="ignore", divide="ignore"):
        a = ndtri(q)

    def model(rho: float) -> np.ndarray:
        if rho <= 0:
            return np.array([(1 - q[i]) * (1 - q[j]) for i, j in pairs])
        z, w = latent_nodes(rho, a)
        fail = 1 - latent_q(rho, a, z)  # (Z, k)
        return np.array([(w * fail[:, i] * fail[:, j]).sum() for i, j in pairs])

    loss = lambda rho: float(((model(rho) - empirical) ** 2).sum())
    best = minimize_scalar(loss, bounds=(0.0, MAX_CORRELATION), method="bounded", options={"xatol": 1e-9})
    rho = float(best.x)
    if loss(0.0) <= loss(rho):
        rho = 0.0
    return round(rho, 6)


def with_joint(cal: Calibration, joint: str) -> Calibration:
    """The calibration set to write each category's joint law as ``joint``: table, correlation, independent."""
    if joint not in ("table", "correlation", "independent"):
        raise ValueError(f"joint must be table, correlation or independent, not {joint!r}")
    cats = tuple(
        replace(c, joint=joint, correlation=fit_correlation(c) if joint == "correlation" else None)
        for c in cal.categories
    )
    return replace(cal, categories=cats)


def calibrate(data: EvalData, catalog_of: Mapping[str, str] | None = None) -> Calibration:
    """Per-category pass counts, outcome tables and token bands, and per-model latency, from eval rows.

    ``catalog_of`` maps eval model names to catalog names (default: the same names); every model of ``data``
    must be in it. Shapes and the treatment of missing outcomes: see the module docstring.
    """
    mapping = dict(catalog_of) if catalog_of is not None else {m: m for m in data.models}
    missing = [m for m in data.models if m not in mapping]
    if missing:
        raise ValueError(f"no catalog name for eval model(s) {missing}")
    names = [mapping[m] for m in data.models]
    order = np.argsort(data.category, kind="stable")
    bounds = np.searchsorted(data.category[order], np.arange(len(data.categories) + 1))
    cats = []
    for c, cname in enumerate(data.categories):
        rows = order[bounds[c] : bounds[c + 1]]
        cats.append(_category(data, cname, rows, names))
    latency: dict[str, BandFit] = {}
    if data.latency_s is not None:
        for j, name in enumerate(names):
            fit = band_fit(data.latency_s[:, j])
            if fit is not None:
                latency[name] = fit
    return Calibration(
        source=data.source,
        models=tuple(names),
        eval_names={mapping[m]: m for m in data.models},
        categories=tuple(cats),
        latency=latency,
        report=data.report,
        has_tokens_in=data.tokens_in is not None,
        has_tokens_out=data.tokens_out is not None,
        has_latency=data.latency_s is not None,
    )


def _category(data: EvalData, name: str, rows: np.ndarray, models: list[str]) -> CategoryCalibration:
    passed = data.passed[rows]  # (n, M)
    has = passed >= 0
    with_outcomes = [j for j in range(len(models)) if has[:, j].any()]
    counts: dict[str, tuple[int, int]] = {}
    table: tuple[str, ...] = ()
    patterns: tuple[tuple[tuple[str, ...], int], ...] = ()
    left_out = 0
    if 2 <= len(with_outcomes) <= MAX_TABLE_MODELS:
        cols = np.array(with_outcomes)
        complete = has[:, cols].all(axis=1)
        left_out = int((~complete).sum())
        sub = passed[complete][:, cols].astype(np.int64)  # (n', K) of 0/1
        k = len(cols)
        code = sub @ (1 << np.arange(k))  # bit j set: table model j passed
        hist = np.bincount(code, minlength=1 << k)
        table = tuple(models[j] for j in cols)
        codes = range(1 << k) if k <= FULL_TABLE_MODELS else np.flatnonzero(hist)
        # most passes first, then in table-model order: [both], [first], [second], [] for two models
        ordered = sorted(codes, key=lambda b: (-int(b).bit_count(), [-((int(b) >> j) & 1) for j in range(k)]))
        patterns = tuple((tuple(table[j] for j in range(k) if (int(b) >> j) & 1), int(hist[b])) for b in ordered)
        for i, j in enumerate(cols):
            counts[models[j]] = (int(sub[:, i].sum()), int(sub.shape[0]))
        if sub.shape[0] == 0:  # no prompt has every model: no table, pass rates over each model's own outcomes
            table, patterns, counts = (), (), {}
    if not counts:
        for j in with_outcomes:
            col = passed[:, j]
            counts[models[j]] = (int((col == 1).sum()), int((col >= 0).sum()))
    return CategoryCalibration(
        name=name,
        prompts=int(rows.size),
        pass_counts=counts,
        table_models=table,
        patterns=patterns,
        left_out=left_out if table else 0,
        tokens_in=band_fit(data.tokens_in[rows].ravel()) if data.tokens_in is not None else None,
        tokens_out=band_fit(data.tokens_out[rows].ravel()) if data.tokens_out is not None else None,
    )
