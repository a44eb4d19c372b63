"""Which inputs move the decision, and where it flips: one-at-a-time swings and break-even values.

Every input a worksheet estimates (prices, pass rates and joint-outcome parameters, traffic shares, token bands,
validator catch / false-reject / cost / latency, failure rates, latency) is moved one at a time by ``± swing``
(relative, clipped to its valid range) and the chosen policy's monthly cost, savings against the baseline and
quality are re-estimated with the expected-value engine. The decision is ``compare``'s: the cheapest policy meeting
every category's quality threshold and P95 latency budget.

How it is computed:

* **One batched engine pass.** The swings are rows of a leading batch axis of the engine's parameters, built
  with the machinery of ``--uncertainty`` (:func:`routecalc.decide.uncertainty.batched_problem` for pass rates,
  validators, outcome tables and conditional rates, whose outcome states follow the swung marginals;
  ``draw_metrics(adjust=...)`` for prices, failure rates, latency, tokens and validator cost), chunked to bound
  memory. Latent-difficulty correlations change the quadrature itself, so each correlation setting is its own
  (one-row) engine pass. Traffic shares need no engine run: categories are re-weighted. A few inputs cannot be
  batched in some worksheets (input tokens where context windows or rules cut the token band into segments;
  output tokens, latency and failure rates with deadlines or hedged steps; pass rates of tiered categories;
  a correlation of 0): those settings are applied to the worksheet, re-compiled and evaluated one by one —
  the same arithmetic (the tests check both paths agree to 1e-9).
* **Latency targets.** Budgets are P95 targets and P95 comes from Monte Carlo. A swing's P95 is the point
  estimate's Monte Carlo P95 (per policy and category) scaled by the ratio of expected-value mean latencies
  (swung / today): exact when the swing scales every latency on the route by one factor (a model's latency on
  a one-model route), approximate otherwise (the shape of the latency law is held). Per-step latency targets
  keep today's verdicts.
* **Break-even.** For the chosen policy against the runner-up (or the winner, when the chosen policy is not it)
  and against the baseline, the decision between the two (which of them ``compare`` would pick; or neither) is
  a step function of each input. Its change point nearest today's value, in each direction, is found by root
  finding on the expected-value engine: a scan of :data:`GRID` points (denser near today's value), then
  repeated :data:`SECTIONS`-section of the bracketing interval (bisection, 16 parts at a time) to
  :data:`TOLERANCE` of the searched range, for all inputs and directions at once: one batched engine pass per
  step, about a dozen in all. Unbounded inputs are searched from 0 (1 % of today for tokens and latency) to
  10 times today's value. A change between two scan points and back again before the next is not seen, and a
  change at the very end of a range (a tie there, e.g. one category taking all traffic) is not reported.

Held fixed: the all-to-strongest baseline's model (as chosen today), volume (it scales every monthly figure and
never flips the decision), thresholds and budgets (targets, not estimates), retries, timeouts, error mix, cached
shares, tool hit rates, classifiers and human review.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from routecalc.chains import STRONGEST, compile_worksheet
from routecalc.decide.swing import Evaluated, Evaluator, Input, apply_input, inputs_of
from routecalc.decide.uncertainty import _winner_per_draw
from routecalc.errors import InputError, PolicyError
from routecalc.format import pct, seconds
from routecalc.results import Comparison, jsonable
from routecalc.worksheet import Worksheet

DEFAULT_SWING = 0.20
MAX_SWING = 1.0  # a swing of 100 % takes a price to 0 and doubles it
DEFAULT_TOP = 10
GRID = 24  # break-even scan: points per direction, at (k / GRID)^2 of the way to the range's end
SECTIONS = 16  # each refinement pass splits every bracket into this many parts (one batched engine pass)
TOLERANCE = 1e-10  # refinement stops when the bracket is this share of the searched range (9 passes)
MAX_PASSES = 20
AT_END = 1e-6  # a flip this close to the end of the searched range is a tie there, not a break-even
QUALITY_TOL = 1e-12  # as results.summarize compares quality with a threshold

Rank = Literal["cost", "savings", "quality"]

LATENCY_NOTE = (
    "Latency budgets: a swing's P95 is today's Monte Carlo P95 scaled by the expected-value mean latency "
    "(swung / today), per policy and category; exact when a swing scales every latency on the route by one factor, "
    "approximate otherwise. Per-step latency targets keep today's verdicts."
)
SHARE_NOTE = (
    "Traffic shares: one category's share is swung and the others are rescaled in proportion (they still sum to 1)."
)
FIXED_NOTE = (
    "Not swung: volume (scales every monthly figure, never flips the decision), quality thresholds and latency "
    "budgets (targets), retries, timeouts, error mix, cached shares, tool hit rates, classifiers, human review, "
    "and models or validators no policy uses."
)


def parse_swing(text: str | float) -> float:
    """``"20%"`` or ``0.2`` -> 0.2. Refuses anything outside (0, 100 %]: a swing must move the inputs, and more
    than 100 % would take prices and rates below zero on the low side."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip()
        m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(%?)", raw)
        if m is None:
            raise InputError(f"--swing: give a relative change such as 20% or 0.2 (got {raw!r})")
        value = float(m.group(1)) / (100 if m.group(2) else 1)
        if not m.group(2) and value > MAX_SWING:
            raise InputError(f"--swing: {raw} reads as {value:g} × each input; write {raw}% for percent")
    if not (math.isfinite(value) and 0 < value <= MAX_SWING):
        raise InputError(f"--swing: give a relative change above 0 and at most 100% (got {text!r})")
    return value


# ---------------------------------------------------------------------------------------------------------
# Decisions


FOCUS, RIVAL, NEITHER = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Targets:
    """What the decision checks, from the comparison: thresholds, budgets, today's P95 and mean latency."""

    categories: tuple[str, ...]
    threshold: np.ndarray  # (C,)
    budget: np.ndarray  # (C,) NaN: none
    p95: np.ndarray  # (P, C) today's Monte Carlo P95
    latency: np.ndarray  # (P, C) today's expected mean latency
    steps_ok: np.ndarray  # (P, C) per-step latency targets (today's verdicts)

    @classmethod
    def of(cls, c: Comparison, base_latency: np.ndarray) -> Targets:
        tt = c.problem.tasks
        return cls(
            categories=tuple(tt.names),
            threshold=tt.threshold,
            budget=tt.budget_s,
            p95=np.array([[r.p95_s for r in p.categories] for p in c.policies]),
            latency=base_latency,
            steps_ok=np.array([[all(s.ok for s in r.steps) for r in p.categories] for p in c.policies]),
        )

    def verdicts(self, e: Evaluated) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(N, P, C)`` quality met, P95 budget met (scaled P95, see module docstring); ``(N, P)`` every target."""
        q_ok = e.quality >= self.threshold - QUALITY_TOL
        lat_ok = np.isnan(self.budget) | (e.share[:, None, :] == 0) | (self.scaled_p95(e) <= self.budget)
        return q_ok, lat_ok, (q_ok & lat_ok & self.steps_ok).all(axis=-1)

    def scaled_p95(self, e: Evaluated) -> np.ndarray:
        """``(N, P, C)``: today's Monte Carlo P95 times the ratio of mean latencies (swung / today)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(self.latency > 0, e.latency / self.latency, 1.0)
        return self.p95 * ratio


def pair_outcome(meets: np.ndarray, cost: np.ndarray, quality: np.ndarray, f: int, r: int) -> np.ndarray:
    """``(N,)``: which of policies ``f`` and ``r`` ``compare`` would pick between the two (FOCUS, RIVAL) or
    NEITHER when neither meets every target. Ties as :func:`routecalc.results.pick_winner`: quality, then order."""
    mf, mr = meets[:, f], meets[:, r]
    cf, cr, qf, qr = cost[:, f], cost[:, r], quality[:, f], quality[:, r]
    f_better = (cf < cr) | ((cf == cr) & ((qf > qr) | ((qf == qr) & (f < r))))
    return np.where(mf & (~mr | f_better), FOCUS, np.where(mr, RIVAL, NEITHER))


# ---------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Swing:
    """One input moved down and up by the swing: the chosen policy's figures at each end (EV, per month)."""

    input: Input
    low: float  # the input's value at each end
    high: float
    monthly_cost: tuple[float, float]
    savings: tuple[float, float] | None  # vs the baseline (None: no baseline, or the policy is it)
    quality: tuple[float, float]
    winner: tuple[str | None, str | None]  # compare's winner at each end


@dataclass(frozen=True)
class BreakEven:
    """Where the decision between the chosen policy and one rival flips, moving one input in one direction."""

    input: Input
    rival: str
    role: str  # runner-up | winner | baseline
    direction: str  # below | above
    value: float | None  # None: no flip within the searched range
    searched_to: float  # the end of the searched range in this direction
    before: str  # who compare picks between the two today: a policy name or "neither"
    after: str | None  # ... past the break-even
    reason: str | None  # what changes there
    latency: tuple[tuple[str, str], ...] = ()  # (policy, category) whose P95 budget verdict changes there
    check: str | None = None  # Monte Carlo at the break-even, where a P95 budget decides it


@dataclass(frozen=True)
class Sensitivity:
    """``routecalc sensitivity``: swings ranked by effect, and break-even values. Money per month in ``currency``."""

    worksheet: str
    currency: str
    requests_per_month: float
    policy: str
    winner: str | None
    baseline: str | None
    swing: float
    rank_by: str
    monthly_cost: float  # the chosen policy today (EV)
    savings: float | None
    quality: float
    swings: list[Swing]  # every input, ranked by effect
    top: int
    rivals: list[tuple[str, str]]  # (policy, role)
    break_evens: list[BreakEven]
    notes: list[str]
    engine_passes: int
    recompiled: int
    unbatched: list[str] = field(default_factory=list)  # input keys evaluated on a re-compiled worksheet

    def effect(self, s: Swing, metric: str | None = None) -> tuple[float, float]:
        """Change at the low and high end against today: money per month, or quality in fractions."""
        metric = metric or self.rank_by
        if metric == "cost":
            return s.monthly_cost[0] - self.monthly_cost, s.monthly_cost[1] - self.monthly_cost
        if metric == "savings":
            if s.savings is None or self.savings is None:
                return 0.0, 0.0
            return s.savings[0] - self.savings, s.savings[1] - self.savings
        return s.quality[0] - self.quality, s.quality[1] - self.quality

    @property
    def shown(self) -> list[Swing]:
        """The ``top`` swings, then any other whose swing changes who wins: what tables, charts and the
        break-even search show."""
        base = (self.winner, self.winner)
        return self.swings[: self.top] + [s for s in self.swings[self.top :] if s.winner != base]

    def sentences(self) -> list[str]:
        """One sentence per break-even found, in ranking order."""
        return [break_even_sentence(self, b) for b in self.break_evens if b.value is not None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: money in ``currency`` per month (``_monthly``), quality and rates as fractions."""

        return jsonable(
            {
                "worksheet": self.worksheet,
                "currency": self.currency,
                "requests_per_month": self.requests_per_month,
                "policy": self.policy,
                "winner": self.winner,
                "baseline": self.baseline,
                "swing_fraction": self.swing,
                "ranked_by": self.rank_by,
                "monthly_cost": self.monthly_cost,
                "savings_monthly": self.savings,
                "quality_fraction": self.quality,
                "swings": [
                    {
                        "input": asdict(s.input),
                        "value_low": s.low,
                        "value_high": s.high,
                        "monthly_cost_low": s.monthly_cost[0],
                        "monthly_cost_high": s.monthly_cost[1],
                        "savings_monthly_low": s.savings[0] if s.savings else None,
                        "savings_monthly_high": s.savings[1] if s.savings else None,
                        "quality_fraction_low": s.quality[0],
                        "quality_fraction_high": s.quality[1],
                        "winner_low": s.winner[0],
                        "winner_high": s.winner[1],
                    }
                    for s in self.swings
                ],
                "rivals": [{"policy": p, "role": r} for p, r in self.rivals],
                "break_evens": [
                    {
                        "input": b.input.key,
                        "label": b.input.label,
                        "path": b.input.path,
                        "unit": b.input.unit,
                        "today": b.input.value,
                        "rival": b.rival,
                        "role": b.role,
                        "direction": b.direction,
                        "value": b.value,
                        "searched_to": b.searched_to,
                        "before": b.before,
                        "after": b.after,
                        "reason": b.reason,
                        "monte_carlo_check": b.check,
                        "sentence": break_even_sentence(self, b),
                    }
                    for b in self.break_evens
                ],
                "notes": self.notes,
                "engine_passes": self.engine_passes,
                "recompiled_settings": self.recompiled,
                "unbatched_inputs": self.unbatched,
            }
        )


def break_even_sentence(s: Sensitivity, b: BreakEven) -> str:
    """``cheap-first stops beating today (baseline) when gpt-4.1-mini pass rate on extract is below 71.23%:
    cheap-first misses extract's quality threshold (95.00%).``, or the sentence saying there is no flip."""
    side = "below" if b.direction == "below" else "above"
    today = b.input.text(b.input.value, s.currency)
    pair = f"{s.policy} vs {b.rival} ({b.role})"
    if b.value is None and b.searched_to == b.input.value:
        return f"{pair}: {b.input.label} is at the {'low' if side == 'below' else 'high'} end of its valid range ({today})."
    if b.value is None:
        end = b.input.text(b.searched_to, s.currency)
        return f"{pair}: no flip within the valid range {side} today's {b.input.label} ({today}; searched to {end})."
    if b.before == s.policy:
        what = f"{s.policy} stops beating {b.rival} ({b.role})"
    elif b.after == s.policy:
        what = f"{s.policy} beats {b.rival} ({b.role})"
    elif b.after == b.rival:
        what = f"{b.rival} ({b.role}) beats {s.policy}"
    else:
        what = f"neither {s.policy} nor {b.rival} ({b.role}) meets every target"
    check = f" {b.check}" if b.check else ""
    return (
        f"{what} when {b.input.label} is {side} {b.input.text(b.value, s.currency)} (today {today}): {b.reason}.{check}"
    )


def _label(outcome: int, focus: str, rival: str) -> str:
    return (focus, rival, "neither")[outcome]


def _reason(
    targets: Targets, e: Evaluated, j: int, k: int, pair: tuple[int, int], names: Sequence[str]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What differs between settings ``j`` (today's side of a break-even) and ``k`` (the other side), and the
    (policy, category) pairs whose P95 budget verdict changes."""
    q_ok, lat_ok, meets = targets.verdicts(e)
    p95 = targets.scaled_p95(e)
    cost = e.total_cost
    parts = []
    latency = []
    for p in pair:
        for c, cat in enumerate(targets.categories):
            if q_ok[j, p, c] != q_ok[k, p, c]:
                verb = "misses" if q_ok[j, p, c] else "meets"
                parts.append(f"{names[p]} {verb} {cat}'s quality threshold ({pct(float(targets.threshold[c]), 2)})")
            if lat_ok[j, p, c] != lat_ok[k, p, c]:
                verb = "misses" if lat_ok[j, p, c] else "meets"
                latency.append((names[p], cat))
                parts.append(
                    f"{names[p]} {verb} {cat}'s P95 budget ({seconds(float(targets.budget[c]))}; "
                    f"P95 ≈ {seconds(float(p95[k, p, c]))}, scaled from Monte Carlo)"
                )
    f, r = pair
    if meets[k, f] and meets[k, r] and (cost[j, f] < cost[j, r]) != (cost[k, f] < cost[k, r]):
        parts.append(f"{names[f if cost[k, f] < cost[k, r] else r]} becomes the cheaper of the two")
    return "; ".join(parts) or "the two policies cost the same", tuple(latency)


def _rivals(
    c: Comparison, focus: str, meets: np.ndarray, cost: np.ndarray, quality: np.ndarray
) -> list[tuple[str, str]]:
    """The runner-up (the winner without the chosen policy) or, for another policy, the winner; then the baseline."""
    names = [p.name for p in c.policies]
    f = names.index(focus)
    out: list[tuple[str, str]] = []
    if c.winner == focus:
        others = np.where(np.arange(len(names)) == f, False, meets[0])
        w = int(_winner_per_draw(others[None], cost[:1], quality[:1])[0])
        if w >= 0:
            out.append((names[w], "runner-up"))
    elif c.winner is not None:
        out.append((c.winner, "winner"))
    if c.baseline is not None and c.baseline != focus and all(p != c.baseline for p, _ in out):
        out.append((c.baseline, "baseline"))
    return out


def analyse(
    ws: Worksheet,
    c: Comparison,
    policy: str | None = None,
    swing: float = DEFAULT_SWING,
    top: int = DEFAULT_TOP,
    rank_by: Rank = "cost",
) -> Sensitivity:
    """Swing every input of ``ws`` by ``± swing`` and find break-evens of the ``top`` inputs (and of any input
    whose swing changes who wins). ``c`` must be ``compare(ws, ...)``; ``policy`` defaults to its winner."""
    swing = parse_swing(swing)
    if top < 1:
        raise InputError(f"--top: give at least 1 (got {top})")
    if rank_by not in ("cost", "savings", "quality"):
        raise InputError(f"--by: cost, savings or quality (got {rank_by!r})")
    if policy is None:
        if c.winner is None:
            raise PolicyError(
                "no policy meets every target, so there is no winner to analyse: name one with --policy "
                f"({', '.join(p.name for p in c.policies)})"
            )
        policy = c.winner
    c.policy(policy)  # unknown: PolicyError listing the compared policies
    problem = c.problem
    names = list(problem.chains.names)
    if [p.name for p in c.policies] != names:
        raise ValueError("the comparison's policies are not its problem's chains")
    strongest = c.strongest_model if STRONGEST in names else None
    inputs = inputs_of(ws, problem)
    ev = Evaluator(ws, problem, inputs, strongest)
    targets = Targets.of(c, ev.base.latency[0])
    f = names.index(policy)
    b = names.index(c.baseline) if c.baseline in names and c.baseline != policy else None
    vol = problem.requests_per_month

    base_cost, base_quality = ev.base.total_cost, ev.base.total_quality
    _, _, base_meets = targets.verdicts(ev.base)
    ends = [(i, v) for i, inp in enumerate(inputs) for v in inp.swung(swing)]
    e = ev.run(ends)
    _, _, meets = targets.verdicts(e)
    cost, quality = e.total_cost, e.total_quality
    win = _winner_per_draw(meets, cost, quality)
    swings = []
    for i, inp in enumerate(inputs):
        lo, hi = 2 * i, 2 * i + 1
        swings.append(
            Swing(
                input=inp,
                low=ends[lo][1],
                high=ends[hi][1],
                monthly_cost=(float(cost[lo, f] * vol), float(cost[hi, f] * vol)),
                savings=None
                if b is None
                else (float((cost[lo, b] - cost[lo, f]) * vol), float((cost[hi, b] - cost[hi, f]) * vol)),
                quality=(float(quality[lo, f]), float(quality[hi, f])),
                winner=tuple(names[w] if w >= 0 else None for w in (win[lo], win[hi])),  # type: ignore[arg-type]
            )
        )
    result = Sensitivity(
        worksheet=c.worksheet,
        currency=c.currency,
        requests_per_month=vol,
        policy=policy,
        winner=c.winner,
        baseline=c.baseline,
        swing=swing,
        rank_by=rank_by,
        monthly_cost=float(base_cost[0, f] * vol),
        savings=None if b is None else float((base_cost[0, b] - base_cost[0, f]) * vol),
        quality=float(base_quality[0, f]),
        swings=[],
        top=top,
        rivals=[],
        break_evens=[],
        notes=[],
        engine_passes=0,
        recompiled=0,
    )
    order = sorted(range(len(swings)), key=lambda i: (-max(map(abs, result.effect(swings[i]))), inputs[i].key))
    swings = [swings[i] for i in order]
    rivals = _rivals(c, policy, base_meets, base_cost, base_quality)
    chosen = [s.input for s in replace(result, swings=swings).shown]
    found = _break_evens(ev, targets, chosen, inputs, rivals, f, names) if rivals else []
    found = _monte_carlo_checks(ws, c, found, strongest)
    notes = [LATENCY_NOTE, SHARE_NOTE, FIXED_NOTE]
    if STRONGEST in names and strongest:
        notes.append(f"{STRONGEST} keeps {strongest} in every setting.")
    unbatched = [i.key for i in inputs if not i.batched]
    return replace(
        result,
        swings=swings,
        rivals=rivals,
        break_evens=found,
        notes=notes,
        engine_passes=ev.passes,
        recompiled=ev.recompiled,
        unbatched=unbatched,
    )


def _break_evens(
    ev: Evaluator,
    targets: Targets,
    chosen: Sequence[Input],
    inputs: Sequence[Input],
    rivals: Sequence[tuple[str, str]],
    f: int,
    names: Sequence[str],
) -> list[BreakEven]:
    """Scan, then refine, every (input, direction, rival) at once (module docstring).

    Each refinement pass evaluates :data:`SECTIONS` - 1 points inside every bracket in one batched run and keeps
    the part where the outcome first differs from today's, so the bracket shrinks 16-fold per engine pass.
    """
    index = {inp.key: i for i, inp in enumerate(inputs)}
    rix = [names.index(r) for r, _ in rivals]

    def outcomes(e: Evaluated) -> np.ndarray:  # (N, rivals)
        _, _, meets = targets.verdicts(e)
        cost, quality = e.total_cost, e.total_quality
        return np.stack([pair_outcome(meets, cost, quality, f, r) for r in rix], axis=-1)

    today = outcomes(ev.base)[0]
    legs = [(inp, d, end) for inp in chosen for d, end in (("below", inp.low), ("above", inp.high))]
    live = [g for g, (inp, _, end) in enumerate(legs) if end != inp.value]

    def first_change(points: np.ndarray, leg: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``points`` ``(B, K)`` of brackets on legs ``leg`` for rivals ``r``: index of the first point whose
        outcome differs from today's (``K`` when none does)."""
        settings = [(index[legs[g][0].key], float(v)) for g, row in zip(leg, points, strict=True) for v in row]
        o = outcomes(ev.run(settings)).reshape(*points.shape, len(rix))
        differs = o[np.arange(len(r)), :, r] != today[r][:, None]
        return np.where(differs.any(axis=1), differs.argmax(axis=1), points.shape[1])

    # scan from today's value to the end of the range, denser near today
    value = np.array([legs[g][0].value for g in live])
    span = np.array([legs[g][2] for g in live]) - value
    t = (np.arange(1, GRID + 1) / GRID) ** 2
    grid = value[:, None] + span[:, None] * t
    leg = np.repeat(np.array(live, dtype=np.int64), len(rix))
    r = np.tile(np.arange(len(rix)), len(live))
    k = first_change(np.repeat(grid, len(rix), axis=0), leg, r) if live else np.zeros(0, dtype=np.int64)
    hit = k < GRID
    rows = np.repeat(np.arange(len(live)), len(rix))[hit]
    leg, r, k = leg[hit], r[hit], k[hit]
    lo = np.where(k > 0, grid[rows, np.maximum(k - 1, 0)], value[rows])  # today's side
    hi = grid[rows, k]  # the other side
    width = np.abs(span[rows])
    for _ in range(MAX_PASSES):
        if not len(lo) or (np.abs(hi - lo) <= TOLERANCE * width).all():
            break
        inner = lo[:, None] + (hi - lo)[:, None] * np.arange(1, SECTIONS) / SECTIONS
        j = first_change(inner, leg, r)
        points = np.concatenate([lo[:, None], inner, hi[:, None]], axis=1)
        lo, hi = points[np.arange(len(j)), j], points[np.arange(len(j)), j + 1]
    found: dict[tuple[int, int], BreakEven] = {}
    if len(lo):
        keys = [index[legs[g][0].key] for g in leg]
        n = len(lo)
        sides = ev.run(list(zip(keys, lo, strict=True)) + list(zip(keys, hi, strict=True)))
        o = outcomes(sides)
        for i, (g, ri) in enumerate(zip(leg, r, strict=True)):
            inp, d, end = legs[g]
            if abs(end - hi[i]) <= AT_END * width[i]:
                continue  # a tie at the very end of the range (e.g. one category takes all traffic), not a flip
            rival, role = rivals[ri]
            reason, latency = _reason(targets, sides, i, n + i, (f, rix[ri]), names)
            found[(int(g), int(ri))] = BreakEven(
                input=inp,
                rival=rival,
                role=role,
                direction=d,
                value=float((lo[i] + hi[i]) / 2),
                searched_to=end,
                before=_label(int(today[ri]), names[f], rival),
                after=_label(int(o[n + i, ri]), names[f], rival),
                reason=reason,
                latency=latency,
            )
    out = []
    for g, (inp, d, end) in enumerate(legs):
        for ri, (rival, role) in enumerate(rivals):
            none = BreakEven(inp, rival, role, d, None, end, _label(int(today[ri]), names[f], rival), None, None)
            out.append(found.get((g, ri), none))
    return out


def _monte_carlo_checks(ws: Worksheet, c: Comparison, found: list[BreakEven], strongest: str | None) -> list[BreakEven]:
    """Where a P95 budget decides a break-even, run Monte Carlo (the comparison's samples and seed) on the
    worksheet at that value and say what P95 it gives: the scaled P95 of the search is an approximation."""
    from routecalc.engine.mc import simulate
    from routecalc.results import p95_ci

    names = list(c.problem.chains.names)
    cats = list(c.problem.tasks.names)
    runs: dict[tuple[str, float], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    out = []
    for b in found:
        if not b.latency or b.value is None:
            out.append(b)
            continue
        key = (b.input.key, b.value)
        if key not in runs:
            w = apply_input(ws, b.input, b.value)
            problem = compile_worksheet(w, include_strongest=strongest is not None, strongest=strongest)
            runs[key] = p95_ci(simulate(problem, c.samples, np.random.default_rng(c.seed)))
        q, lo, hi = runs[key]
        parts = []
        for policy, cat in b.latency:
            p, k = names.index(policy), cats.index(cat)
            budget = float(c.problem.tasks.budget_s[k])
            parts.append(
                f"{policy} / {cat} P95 {seconds(float(q[p, k]))} (95% CI {seconds(float(lo[p, k]))}–"
                f"{seconds(float(hi[p, k]))}) against its {seconds(budget)} budget"
            )
        check = (
            f"Monte Carlo at that value ({c.samples:,} requests, seed {c.seed}): {'; '.join(parts)} — the scaled "
            "P95 is approximate; where they disagree, trust Monte Carlo."
        )
        out.append(replace(b, check=check))
    return out
