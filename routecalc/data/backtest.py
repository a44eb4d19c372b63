"""Backtest: the worksheet's estimate of a logged period next to what the log (or the invoice) says happened.

The period is the log's span; its volume is the number of requests in it: given, or the log's calls divided by
the policy's expected calls per request (so the estimate makes as many calls as the log, and what is compared is
how they split over models and categories, what they cost and how they behave). The worksheet's own volume for
that period is shown beside it. Estimates come from the expected-value engine (:func:`~routecalc.engine.ev.
expected_values`), per category ``c`` and catalog model ``m`` for N requests:

* calls ``N share_c calls[c, m]`` (tries, failed ones included), provider failures ``calls x failure_rate_m``;
* tokens of successful calls: input ``calls (1 - f_m) E[x_c]``, output ``calls (1 - f_m) E[y_c] output_ratio_m``;
* spend ``N share_c token_cost[c, m]``; gates, human review and classifiers are added to the totals only (they
  are not model calls in the log);
* latency of a successful call on m: the model's law (``ttft + y tpot`` or ``e2e``) with y drawn from the
  categories in proportion to m's expected successful calls there: P50/P95 of 200,000 seeded draws (about
  ±1 % at P95 from sampling).

Relative error = (estimate - logged) / logged: +10 % means the estimate is 10 % too high. Logged categories
that the worksheet does not have are left out (listed); logged models outside its catalog count as logged with
an estimate of 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from routecalc.chains import compile_worksheet
from routecalc.data.logrows import PROVIDER_ERRORS, SUCCESS
from routecalc.data.logs import LogData
from routecalc.engine.ev import expected_values
from routecalc.engine.histogram import BINS_PER_DECADE, hist_quantiles
from routecalc.errors import InputError
from routecalc.worksheet.schema import DAYS_PER_MONTH, Worksheet

LATENCY_DRAWS = 200_000


def relative(estimate: float | None, logged: float | None) -> float | None:
    """(estimate - logged) / logged; None when either is missing or nothing was logged."""
    if estimate is None or logged is None or logged == 0:
        return None
    return (estimate - logged) / logged


@dataclass(frozen=True)
class Line:
    """Logged vs estimated calls, tokens of successful calls and spend for a model, a category or the total."""

    name: str
    calls_log: float
    calls_est: float
    tokens_in_log: float | None
    tokens_in_est: float
    tokens_out_log: float | None
    tokens_out_est: float
    cost_log: float | None
    cost_est: float

    def error(self, what: str) -> float | None:
        """Relative error of ``calls``, ``tokens_in``, ``tokens_out`` or ``cost``."""
        return relative(getattr(self, f"{what}_est"), getattr(self, f"{what}_log"))


@dataclass(frozen=True)
class ModelCheck:
    """A model's logged failure rate and latency of successful calls (seconds) next to the worksheet's."""

    name: str
    calls: float
    failure_log: float | None
    failure_est: float | None
    p50_log: float | None
    p95_log: float | None
    p50_est: float | None
    p95_est: float | None


@dataclass(frozen=True)
class Backtest:
    """The comparison. Money in the worksheet's currency (the log's cost is read as that currency)."""

    worksheet: str
    policy: str
    source: str
    currency: str
    start: float
    days: float
    requests: float
    requests_given: bool
    calls_per_request: float
    worksheet_requests: float  # the worksheet's volume for the log's period
    by_model: tuple[Line, ...]
    by_category: tuple[Line, ...]
    total: Line
    other_cost_est: float  # gates, human review and classifiers in the period: in the total estimate only
    models: tuple[ModelCheck, ...]
    invoice: float | None = None
    skipped_categories: tuple[tuple[str, float], ...] = ()  # logged categories the worksheet lacks, and calls
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def invoice_error(self) -> float | None:
        return relative(self.total.cost_est, self.invoice)


def backtest(
    ws: Worksheet,
    policy: str,
    data: LogData,
    requests: float | None = None,
    invoice: float | None = None,
    seed: int = 0,
) -> Backtest:
    """Estimate the log's period with ``policy`` and compare (module docstring). ``data`` must use the catalog's
    model names (read it with ``model_map``)."""
    problem = compile_worksheet(ws)
    names = problem.chains.names
    if policy not in names:
        ws.policy(policy)  # PolicyError naming the worksheet's policies
    p = names.index(policy)
    ev = expected_values(problem)
    tasks, models = problem.tasks, problem.models
    cats = list(tasks.names)
    M = int((~models.is_tool).sum())
    catalog = list(models.names[:M])
    share = tasks.share / tasks.share.sum()
    calls = ev.calls[p][:, :M]  # (C, M) tries per request
    ok = calls * (1 - models.fail[:M])
    per_request = float(share @ calls.sum(axis=1))
    log_cats = [c for c in data.categories if c in cats]
    if not log_cats:
        raise InputError(
            f"{data.source}: none of the log's categories ({', '.join(data.categories[:8])}) is a category of the "
            f"worksheet ({', '.join(cats)}): map them with --category-map"
        )
    ci = [data.categories.index(c) for c in log_cats]
    logged_calls = float(data.requests[ci].sum())
    if requests is None:
        if per_request <= 0:
            raise InputError(f"policy {policy!r} makes no model calls: give --requests")
        n = logged_calls / per_request
    else:
        n = float(requests)
    skipped = tuple((c, float(data.requests[i].sum())) for i, c in enumerate(data.categories) if c not in cats)
    # logged, by worksheet category (rows) and model (catalog first, then unknown models)
    extra = [m for m in data.models if m not in catalog]
    all_models = catalog + extra
    C, A = len(cats), len(all_models)
    log_calls, log_fail = np.zeros((C, A)), np.zeros((C, A))
    log_in, log_out, log_cost = np.zeros((C, A)), np.zeros((C, A)), np.zeros((C, A))
    for i, c in enumerate(data.categories):
        if c not in cats:
            continue
        r = cats.index(c)
        for j, m in enumerate(data.models):
            a = all_models.index(m)
            log_calls[r, a] = data.requests[i, j].sum()
            log_fail[r, a] = data.requests[i, j, list(PROVIDER_ERRORS)].sum()
            if data.tokens_in is not None:
                log_in[r, a] = data.tokens_in[i, j, SUCCESS]
            if data.tokens_out is not None:
                log_out[r, a] = data.tokens_out[i, j, SUCCESS]
            if data.cost is not None:
                log_cost[r, a] = data.cost[i, j].sum()
    pad = lambda x: np.concatenate([x, np.zeros((C, len(extra)))], axis=1)
    est_calls = pad(n * share[:, None] * calls)
    est_in = pad(n * share[:, None] * ok * tasks.x_mean[:, None])
    est_out = pad(n * share[:, None] * ok * tasks.y_mean[:, None] * models.output_ratio[None, :M])
    est_cost = pad(n * share[:, None] * ev.token_cost[p][:, :M])
    other = ev.gate_cost[p] + ev.human_cost[p] + (ev.router_cost[p] if ev.router_cost is not None else 0.0)
    other_cost = float(n * (share * other).sum())
    has_in, has_out, has_cost = data.tokens_in is not None, data.tokens_out is not None, data.cost is not None

    def line(name: str, sel: tuple) -> Line:
        return Line(
            name=name,
            calls_log=float(log_calls[sel].sum()),
            calls_est=float(est_calls[sel].sum()),
            tokens_in_log=float(log_in[sel].sum()) if has_in else None,
            tokens_in_est=float(est_in[sel].sum()),
            tokens_out_log=float(log_out[sel].sum()) if has_out else None,
            tokens_out_est=float(est_out[sel].sum()),
            cost_log=float(log_cost[sel].sum()) if has_cost else None,
            cost_est=float(est_cost[sel].sum()),
        )

    by_model = tuple(
        line(m, (slice(None), a))
        for a, m in enumerate(all_models)
        if log_calls[:, a].sum() > 0 or est_calls[:, a].sum() > 1e-12
    )
    by_category = tuple(line(c, (r, slice(None))) for r, c in enumerate(cats))
    whole = line("total", (slice(None), slice(None)))
    total = Line(**{**whole.__dict__, "cost_est": whole.cost_est + other_cost})
    checks = []
    rng = np.random.default_rng(seed)
    for a, m in enumerate(all_models):
        logged = log_calls[:, a].sum()
        if logged == 0 and est_calls[:, a].sum() <= 1e-12:
            continue
        j = data.models.index(m) if m in data.models else None
        p50_log = p95_log = None
        if j is not None and data.latency_hist is not None and data.latency_hist[j, 0].sum():
            p50_log, p95_log = (float(v) for v in hist_quantiles(data.latency_hist[j, 0], [0.5, 0.95], BINS_PER_DECADE))
        p50_est = p95_est = None
        if a < M and ok[:, a].sum() > 0:
            p50_est, p95_est = _latency_quantiles(problem, a, share * ok[:, a], rng)
        checks.append(
            ModelCheck(
                name=m,
                calls=float(logged),
                failure_log=float(log_fail[:, a].sum() / logged) if logged else None,
                failure_est=float(models.fail[a]) if a < M else None,
                p50_log=p50_log,
                p95_log=p95_log,
                p50_est=p50_est,
                p95_est=p95_est,
            )
        )
    notes = list(data.notes)
    if extra:
        notes.append(f"logged models not in the worksheet (estimate 0): {', '.join(extra)}")
    if data.cost is None:
        notes.append("the log has no cost: spend is compared only with --invoice")
    days = max(0.0, data.last - data.first) / 86400
    return Backtest(
        worksheet=ws.name,
        policy=policy,
        source=data.source,
        currency=ws.currency,
        start=data.first,
        days=days,
        requests=n,
        requests_given=requests is not None,
        calls_per_request=per_request,
        worksheet_requests=ws.volume.per_month * days / DAYS_PER_MONTH,
        by_model=by_model,
        by_category=by_category,
        total=total,
        other_cost_est=other_cost,
        models=tuple(checks),
        invoice=invoice,
        skipped_categories=skipped,
        notes=tuple(notes),
    )


def _latency_quantiles(problem, m: int, weights: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """P50/P95 (s) of model m's successful-call latency, y mixed over categories by ``weights``."""
    tasks, models = problem.tasks, problem.models
    w = weights / weights.sum()
    c = rng.choice(w.size, size=LATENCY_DRAWS, p=w)
    y = np.exp(tasks.y_mu[c] + tasks.y_sigma[c] * rng.standard_normal(LATENCY_DRAWS)) * models.output_ratio[m]
    a = np.exp(models.ttft_mu[m] + models.ttft_sigma[m] * rng.standard_normal(LATENCY_DRAWS))
    b = 0.0
    if np.isfinite(models.tpot_mu[m]):
        b = np.exp(models.tpot_mu[m] + models.tpot_sigma[m] * rng.standard_normal(LATENCY_DRAWS))
    p50, p95 = np.percentile(a + y * b, [50, 95])
    return float(p50), float(p95)
