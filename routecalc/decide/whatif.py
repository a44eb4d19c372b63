"""What a routing pattern buys: the same policy with a perfect (or better, or worse) classifier, and without
its deadlines.

Each answer re-compiles the policy with one thing changed and runs the same engines on it, next to the
comparison that was already computed: a classifier's confusion matrix moved towards the identity (its
*oracle*) or towards chance, every ``deadline_s`` removed. Nothing here models the arithmetic again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from routecalc.chains import compile_worksheet, map_leaves
from routecalc.engine import expected_values, simulate
from routecalc.results import Comparison, jsonable
from routecalc.worksheet import ClassifierSpec, PolicySpec, Router, StepSpec, Worksheet

CURVE_POINTS = 11  # accuracy from chance to perfect, plus the classifier's own


@dataclass(frozen=True)
class ClassifierValue:
    """One classifier inside one policy: what this one saves, what a perfect one would, and the curve between.

    Accuracy is *balanced* accuracy (mean recall over labels), so it does not depend on which categories use
    the classifier. Curve points move the confusion matrix linearly towards the identity (above the
    classifier's own accuracy) or towards uniform guessing (below). Money per month for the whole policy, in
    the comparison's currency; quality is the share of good answers in the categories routed by the classifier
    (expected values).
    """

    policy: str
    classifier: str
    categories: tuple[str, ...]  # where the policy routes by this classifier
    accuracy: float
    monthly_cost: float  # the whole policy
    quality: float  # within ``categories`` (traffic-weighted)
    oracle_monthly_cost: float
    oracle_quality: float
    curve_accuracy: tuple[float, ...]
    curve_monthly_cost: tuple[float, ...]
    curve_quality: tuple[float, ...]
    curve_meets_quality: tuple[bool, ...]  # every category's quality threshold met (latency not re-checked)

    @property
    def perfect_saves_monthly(self) -> float:
        """What replacing this classifier with a perfect one (same cost and latency) saves per month."""
        return self.monthly_cost - self.oracle_monthly_cost


@dataclass(frozen=True)
class DeadlineEffect:
    """One category of a policy with client-side deadlines, next to the same policy without them (same seed and
    samples, so both see the same requests). Latency percentiles of that category's requests (Monte Carlo);
    money per month and quality in that category (expected values)."""

    policy: str
    category: str
    late: float  # share of the category's requests that abandoned a try at a deadline
    waste_monthly: float  # spend on the abandoned tries
    p95_s: float
    p99_s: float
    p95_s_without: float
    p99_s_without: float
    monthly_cost: float
    monthly_cost_without: float
    quality: float
    quality_without: float

    @property
    def p99_bought_s(self) -> float:
        """Seconds the deadlines take off the category's P99 (negative: they make it worse)."""
        return self.p99_s_without - self.p99_s


def confusion_at(clf: ClassifierSpec, accuracy: float) -> list[list[float]]:
    """The classifier's confusion matrix moved to balanced accuracy ``accuracy`` (in [1/K, 1]).

    ``M(a) = (1 - t) M0 + t I`` for ``a >= a0`` with ``t = (a - a0) / (1 - a0)``, else ``(1 - t) M0 + t U``
    with ``U = 1/K`` everywhere and ``t = (a0 - a) / (a0 - 1/K)``; ``a0`` = mean of ``M0``'s diagonal.
    """
    m0 = np.asarray(clf.matrix(), dtype=float)
    k = m0.shape[0]
    a0 = float(np.trace(m0) / k)
    if accuracy >= a0:
        t = 1.0 if a0 >= 1 else (accuracy - a0) / (1 - a0)
        m = (1 - t) * m0 + t * np.eye(k)
    else:
        t = 1.0 if a0 <= 1 / k else (a0 - accuracy) / (a0 - 1 / k)
        m = (1 - t) * m0 + t / k
    return m.tolist()


def _with_confusion(clf: ClassifierSpec, name: str, matrix: list[list[float]]) -> ClassifierSpec:
    rows = {t: dict(zip(clf.labels, row, strict=True)) for t, row in zip(clf.labels, matrix, strict=True)}
    return clf.model_copy(update={"name": name, "confusion": rows, "recall": None})


def _classifiers_of(pol: PolicySpec) -> dict[str, list[str]]:
    """Classifier name -> the categories whose route uses it, in worksheet order."""
    found: dict[str, list[str]] = {}
    for cat, route in pol.routes.items():

        def note(r: Router, cat: str = cat) -> Router:
            if r.classifier is not None and cat not in found.setdefault(r.classifier, []):
                found[r.classifier].append(cat)
            return r

        map_leaves(route, router_fn=note)
    return found


def _renamed(pol: PolicySpec, name: str, classifier: str, variant: str) -> PolicySpec:
    def swap(r: Router) -> Router:
        return r.model_copy(update={"classifier": variant}) if r.classifier == classifier else r

    routes = {c: map_leaves(r, router_fn=swap) for c, r in pol.routes.items()}
    return pol.model_copy(update={"name": name, "routes": routes})


def classifier_values(ws: Worksheet, comparison: Comparison, points: int = CURVE_POINTS) -> list[ClassifierValue]:
    """For every (policy, classifier) in the worksheet: its value curve, evaluated in one engine call."""
    clfs = {k.name: k for k in ws.classifiers}
    pairs = [(pol, name, cats) for pol in ws.policies for name, cats in _classifiers_of(pol).items()]
    if not pairs:
        return []
    variants: list[PolicySpec] = []
    extra_clfs: list[ClassifierSpec] = []
    grids: list[np.ndarray] = []
    for i, (pol, name, _) in enumerate(pairs):
        clf = clfs[name]
        k = len(clf.labels)
        a0 = float(np.trace(np.asarray(clf.matrix())) / k)
        grid = np.unique(np.append(np.linspace(1 / k, 1, points), a0))
        grids.append(grid)
        for j, a in enumerate(grid):
            vname = f"{name}@{i}.{j}"
            extra_clfs.append(_with_confusion(clf, vname, confusion_at(clf, float(a))))
            variants.append(_renamed(pol, f"{pol.name}@{i}.{j}", name, vname))
    sub = ws.model_copy(update={"policies": variants, "classifiers": [*ws.classifiers, *extra_clfs]})
    problem = compile_worksheet(sub, include_strongest=False)
    ev = expected_values(problem)
    w = problem.tasks.share
    vol = problem.requests_per_month
    monthly = ev.cost @ w * vol
    meets = (ev.quality >= problem.tasks.threshold[None, :] - 1e-12).all(axis=1)
    names = list(problem.tasks.names)
    out = []
    row = 0
    for (pol, name, cats), grid in zip(pairs, grids, strict=True):
        rows = slice(row, row + len(grid))
        row += len(grid)
        used = np.isin(names, cats)
        wc = np.where(used, w, 0.0) / max(float(w[used].sum()), 1e-300)
        quality = ev.quality @ wc
        a0 = float(np.trace(np.asarray(clfs[name].matrix())) / len(clfs[name].labels))
        p = comparison.problem.chains.names.index(pol.name)
        actual = comparison.policy(pol.name)
        out.append(
            ClassifierValue(
                policy=pol.name,
                classifier=name,
                categories=tuple(cats),
                accuracy=a0,
                monthly_cost=actual.monthly_cost,
                quality=float(comparison.ev.quality[p] @ wc),
                oracle_monthly_cost=float(monthly[rows][-1]),
                oracle_quality=float(quality[rows][-1]),
                curve_accuracy=tuple(float(a) for a in grid),
                curve_monthly_cost=tuple(float(v) for v in monthly[rows]),
                curve_quality=tuple(float(v) for v in quality[rows]),
                curve_meets_quality=tuple(bool(v) for v in meets[rows]),
            )
        )
    return out


def _without_deadline(chain: list[StepSpec]) -> list[StepSpec]:
    return [s.model_copy(update={"deadline_s": None, "on_deadline": None}) for s in chain]


def deadline_effects(ws: Worksheet, comparison: Comparison) -> list[DeadlineEffect]:
    """Every (policy, category) with a deadline next to itself without: the P99 the deadlines buy and the money
    they waste. The variants run with the comparison's samples and seed."""
    base = comparison.problem
    ch = base.chains
    timed = np.isfinite(ch.deadline_s).any(axis=(2, 3))  # (P, C)
    names = {ch.names[i] for i in np.flatnonzero(timed.any(axis=1))}
    pols = [p for p in ws.policies if p.name in names]
    if not pols:
        return []
    stripped = [
        p.model_copy(update={"routes": {c: map_leaves(r, _without_deadline) for c, r in p.routes.items()}})
        for p in pols
    ]
    problem = compile_worksheet(ws.model_copy(update={"policies": stripped}), include_strongest=False)
    ev = expected_values(problem)
    mc = simulate(problem, comparison.samples, np.random.default_rng(comparison.seed))
    qs = [0.95, 0.99]
    monthly = problem.requests_per_month * problem.tasks.share  # (C,) requests per month per category
    out = []
    for j, pol in enumerate(pols):
        p = ch.names.index(pol.name)
        with_q = comparison.mc.quantiles(comparison.mc.hist[p], qs)  # (C, 2)
        without_q = mc.quantiles(mc.hist[j], qs)
        for c in np.flatnonzero(timed[p]):
            waste = comparison.ev.deadline_waste
            out.append(
                DeadlineEffect(
                    policy=pol.name,
                    category=problem.tasks.names[c],
                    late=float(comparison.ev.late[p, c]) if comparison.ev.late is not None else 0.0,
                    waste_monthly=float(waste[p, c] * monthly[c]) if waste is not None else 0.0,
                    p95_s=float(with_q[c, 0]),
                    p99_s=float(with_q[c, 1]),
                    p95_s_without=float(without_q[c, 0]),
                    p99_s_without=float(without_q[c, 1]),
                    monthly_cost=float(comparison.ev.cost[p, c] * monthly[c]),
                    monthly_cost_without=float(ev.cost[j, c] * monthly[c]),
                    quality=float(comparison.ev.quality[p, c]),
                    quality_without=float(ev.quality[j, c]),
                )
            )
    return out


@dataclass(frozen=True)
class PatternEffects:
    """Everything :func:`pattern_effects` found: classifier values and deadline effects (either may be empty)."""

    classifiers: list[ClassifierValue]
    deadlines: list[DeadlineEffect]

    def __bool__(self) -> bool:
        return bool(self.classifiers or self.deadlines)

    def to_dict(self) -> dict:
        return jsonable(
            {
                "classifiers": [
                    asdict(v) | {"perfect_saves_monthly": v.perfect_saves_monthly} for v in self.classifiers
                ],
                "deadlines": [asdict(d) | {"p99_bought_s": d.p99_bought_s} for d in self.deadlines],
            }
        )


def pattern_effects(ws: Worksheet, comparison: Comparison) -> PatternEffects:
    """What the worksheet's classifiers and deadlines buy, next to the comparison already computed."""
    return PatternEffects(classifier_values(ws, comparison), deadline_effects(ws, comparison))
