"""Routing inside a category: splits, rules and classifiers flattened into *lanes* over request *segments*.

A policy's route for a category is a chain of steps, or a router (a weighted ``split``, ``rules`` on the request,
a ``classifier``'s predicted label) of routes. Every leaf chain becomes a lane. Which lane a request takes
depends on

* its *segment*: the interval its input tokens fall in (cut at every rule threshold, every context window of
  a model the category may use and every long-context price threshold of the catalog) and its values of the
  attributes the rules test;
* its *tier* (a classifier routes by its prediction, drawn from the confusion row of the request's true tier);
* chance, for splits.

``lane_weights`` gives, per (tier, segment), each lane's probability: the product along the path of split
weights, rule matches (first match wins) and confusion probabilities. Segments are exact intervals of the
lognormal token band, so the expected-value engine stays closed form: a segment carries its probability and its
conditional mean input tokens, and a step whose model's window lies below a segment overflows for all of it (and
a model whose long-context threshold lies below it bills all of it at its long-context prices).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from routecalc.format import pct
from routecalc.worksheet import ClassifierSpec, Condition, PolicySpec, Router, StepSpec, TaskSpec, Worksheet, step_gated

MAX_SEGMENTS = 256  # token intervals x attribute combinations per category
MIN_OVERFLOW = 1e-6  # a window the category's token band exceeds less often than this is not modelled


@dataclass(frozen=True, eq=False)
class SegmentTable:
    """Per category, its segments (token interval x attribute combination), padded to ``G``.

    ``edges`` ``(C, E)``: the cut points of the input-token intervals (``+inf`` padded); interval ``j`` is
    ``(edges[j-1], edges[j]]`` with ``edges[-1] = 0``. ``prob`` ``(C, G)``: probability of each segment (0 pads);
    ``x_mean`` ``(C, G)``: mean input tokens within it; ``x_lo`` ``(C, G)``: its interval's lower bound;
    ``interval`` / ``combo`` ``(C, G)``: its interval and attribute-combination index; ``n_combos`` ``(C,)``;
    ``combo_prob`` ``(C, A)``: probability of each attribute combination (Monte Carlo draws it).
    ``window`` ``(C, M)``: the context windows enforced (see :func:`modelled_windows`); both engines skip a step
    whose window a request exceeds, so their overflow shares agree. ``long_above`` ``(C, M)``: the long-context
    price thresholds enforced alike (a prompt longer than it is billed at the model's long-context prices).
    """

    edges: np.ndarray
    prob: np.ndarray
    x_mean: np.ndarray
    x_lo: np.ndarray
    interval: np.ndarray
    combo: np.ndarray
    n_combos: np.ndarray
    combo_prob: np.ndarray
    window: np.ndarray  # (C, M) context window enforced per category and catalog entry (inf: none)
    long_above: np.ndarray  # (C, M) long-context price threshold enforced (inf: none, or never reached)

    def take(self, ix: np.ndarray) -> SegmentTable:
        """The segments of categories ``ix`` only, in that order."""
        return SegmentTable(**{f.name: getattr(self, f.name)[ix] for f in fields(self)})

    @property
    def trivial(self) -> bool:
        """One segment per category: the whole token band, no attributes."""
        return self.prob.shape[1] == 1


@dataclass(frozen=True)
class Branch:
    """One router decision on the way to a lane: a split arm, a rule, or a classifier's predicted label.

    ``index`` is the arm / rule / label position in the router; ``label`` reads as the worksheet says it
    (the predicted label, ``rule 2``, ``else``, ``arm 1``); ``weight`` is a split arm's weight, ``when`` a rule's
    condition (None for the default rule), ``classifier`` the classifier's name.
    """

    kind: str  # "split" | "rule" | "classifier"
    index: int
    label: str
    weight: float | None = None
    when: Condition | None = None
    classifier: str | None = None


@dataclass(frozen=True)
class Lane:
    """One leaf chain of a category's route, and what reaches it."""

    steps: tuple[StepSpec, ...]
    weight: np.ndarray  # (T, G): probability of taking this lane given the true tier and the segment
    classifiers: tuple[str, ...]  # classifiers on the path (each adds its cost and latency)
    path: tuple[Branch, ...] = ()  # the router decisions that lead here, outermost first (exports read them)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z) for the few cut points of a band (math.erfc: no scipy import on the common path)."""
    flat = np.asarray(z, dtype=float)
    return np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in flat.ravel()]).reshape(flat.shape)


def _exceeds(task: TaskSpec, tokens: float) -> float:
    """P(input tokens > ``tokens``) under the category's band."""
    band = task.tokens_in
    if band.sigma == 0:
        return float(band.expected > tokens)
    return float(1 - _normal_cdf(np.array((math.log(tokens) - band.mu) / band.sigma)))


def modelled_windows(ws: Worksheet, task: TaskSpec) -> dict[str, float]:
    """The context windows the engines enforce for a category: those its prompts exceed at least 1 in 10^6
    times (further out, a lognormal tail says more about the band's shape than about the prompts)."""
    return {
        m.name: float(m.context_window)
        for m in ws.models
        if m.context_window is not None and _exceeds(task, m.context_window) >= MIN_OVERFLOW
    }


def modelled_long_context(ws: Worksheet, task: TaskSpec) -> dict[str, float]:
    """The long-context price thresholds the engines apply in a category: those its prompts exceed at least 1 in
    10^6 times (as for windows). Every catalog model's counts, so optimize's candidates are priced alike."""
    return {
        m.name: float(m.long_context.above_tokens)
        for m in ws.models
        if m.long_context is not None and _exceeds(task, m.long_context.above_tokens) >= MIN_OVERFLOW
    }


def _thresholds(ws: Worksheet, task: TaskSpec, policies: Sequence[PolicySpec]) -> list[float]:
    """Cut points of a category's input tokens: rule thresholds, the windows of models it may use, and the
    long-context price thresholds of the catalog."""
    cuts: set[float] = set(modelled_long_context(ws, task).values())
    windows = modelled_windows(ws, task)
    for pol in policies:
        route = pol.routes.get(task.name)
        if route is None:
            continue
        for cond in _conditions(route):
            for v in (cond.input_tokens_gt, cond.input_tokens_le):
                if v is not None and v > 0:
                    cuts.add(float(v))
        if not windows:  # no model's window is in play here: its steps add no cut (the common case)
            continue
        for chain in pol.chains(task.name):
            for step in chain:
                cuts.update(float(windows[n]) for n in step.names if n in windows)
    return sorted(cuts)


def _conditions(route: list[StepSpec] | Router):  # type: ignore[no-untyped-def]
    if isinstance(route, list):
        return
    if route.rules is not None:
        for rule in route.rules:
            if rule.when is not None:
                yield rule.when
            yield from _conditions(rule.route)
    for arm in route.split or []:
        yield from _conditions(arm.route)
    for sub in (route.routes or {}).values():
        yield from _conditions(sub)


def _tested_attributes(ws: Worksheet, task: TaskSpec) -> list[str]:
    names: list[str] = []
    for pol in ws.policies:
        route = pol.routes.get(task.name)
        if route is None:
            continue
        for cond in _conditions(route):
            if cond.attribute is not None and cond.attribute not in names:
                names.append(cond.attribute)
    return names


def _intervals(task: TaskSpec, cuts: list[float], x_mean: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probability, conditional mean and lower bound of each input-token interval ``(lo, hi]``.

    Lognormal band ``(mu, sigma)``: ``P = Phi(b) - Phi(a)`` and ``E[x; lo < x <= hi] = e^(mu + sigma^2/2)
    (Phi(b - sigma) - Phi(a - sigma))`` with ``a, b = (ln lo - mu) / sigma, (ln hi - mu) / sigma``. A fixed
    value lies in one interval. With no cut the mean is the band's own mean (bit for bit).
    """
    lo = np.array([0.0, *cuts])
    hi = np.array([*cuts, np.inf])
    band = task.tokens_in
    if not cuts:
        return np.ones(1), np.array([x_mean]), lo
    mu, sigma = band.mu, band.sigma
    if sigma == 0:
        value = math.exp(mu) if math.isfinite(mu) else 0.0
        inside = (lo < value) & (value <= hi) if value > 0 else np.arange(lo.size) == 0
        return inside.astype(float), np.where(inside, value, 0.0), lo
    with np.errstate(divide="ignore"):
        a = (np.log(lo) - mu) / sigma
        b = (np.log(hi) - mu) / sigma
    prob = _normal_cdf(b) - _normal_cdf(a)
    partial = math.exp(mu + sigma**2 / 2) * (_normal_cdf(b - sigma) - _normal_cdf(a - sigma))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(prob > 0, partial / prob, (lo + np.minimum(hi, lo * 2 + 1)) / 2)
    return prob, mean, lo


def segment_table(
    ws: Worksheet, x_mean: np.ndarray, extra: Sequence[PolicySpec] = (), catalog: Sequence[str] = ()
) -> SegmentTable:
    """Every category's segments (see module docstring); ``x_mean`` is each category's band mean.

    ``extra``: policies compiled besides the worksheet's (e.g. all-to-strongest), whose models' windows count.
    """
    per_cat = []
    policies = [*ws.policies, *extra]
    for c, task in enumerate(ws.tasks):
        cuts = _thresholds(ws, task, policies)
        prob, mean, lo = _intervals(task, cuts, float(x_mean[c]))
        attrs = _tested_attributes(ws, task)
        values = [list((task.attributes or {})[a].items()) for a in attrs]
        combos = list(itertools.product(*values)) if values else [()]
        combo_prob = np.array([math.prod(p for _, p in combo) for combo in combos]) if values else np.ones(1)
        per_cat.append((cuts, prob, mean, lo, combo_prob))
    G = max(len(p) * len(cp) for _, p, _, _, cp in per_cat)
    if G > MAX_SEGMENTS:
        raise ValueError(
            f"a category would need {G} segments (token intervals x attribute values); at most {MAX_SEGMENTS}"
        )
    E = max(len(cuts) for cuts, *_ in per_cat) or 1
    C = len(per_cat)
    A = max(len(cp) for *_, cp in per_cat)
    edges = np.full((C, E), np.inf)
    out = {k: np.zeros((C, G)) for k in ("prob", "x_mean", "x_lo")}
    interval = np.zeros((C, G), dtype=np.int64)
    combo = np.zeros((C, G), dtype=np.int64)
    combo_prob = np.zeros((C, A))
    n_combos = np.zeros(C, dtype=np.int64)
    for c, (cuts, prob, mean, lo, cp) in enumerate(per_cat):
        edges[c, : len(cuts)] = cuts
        g = np.arange(len(prob) * len(cp))
        j, a = g // len(cp), g % len(cp)
        out["prob"][c, g] = prob[j] * cp[a]
        out["x_mean"][c, g] = mean[j]
        out["x_lo"][c, g] = lo[j]
        interval[c, g], combo[c, g] = j, a
        combo_prob[c, : len(cp)] = cp
        n_combos[c] = len(cp)
    names = list(catalog) or [m.name for m in ws.models]
    window = np.full((C, len(names)), np.inf)
    long_above = np.full((C, len(names)), np.inf)
    for c, task in enumerate(ws.tasks):
        for name, w in modelled_windows(ws, task).items():
            window[c, names.index(name)] = w
        for name, t in modelled_long_context(ws, task).items():
            long_above[c, names.index(name)] = t
    return SegmentTable(
        window=window,
        long_above=long_above,
        edges=edges,
        prob=out["prob"],
        x_mean=out["x_mean"],
        x_lo=out["x_lo"],
        interval=interval,
        combo=combo,
        n_combos=n_combos,
        combo_prob=combo_prob,
    )


def lanes(ws: Worksheet, route: list[StepSpec] | Router, c: int, seg: SegmentTable, tiers: list[str]) -> list[Lane]:
    """The lanes of one category's route, with their weights over (true tier, segment)."""
    task = ws.tasks[c]
    T, G = max(1, len(tiers)), seg.prob.shape[1]
    if isinstance(route, list):  # a plain chain: one lane, every request (the common case: keep it cheap)
        return [Lane(tuple(route), np.ones((T, G)), ())]
    classifiers = {k.name: k for k in ws.classifiers}
    tests_attributes = any(cond.attribute is not None for cond in _conditions(route))
    attrs = _tested_attributes(ws, task) if tests_attributes else []
    combos = list(itertools.product(*[list((task.attributes or {})[a]) for a in attrs])) if attrs else [()]
    n_cuts = int(np.isfinite(seg.edges[c]).sum())
    cuts = seg.edges[c, :n_cuts]
    lo = np.concatenate([[0.0], cuts])[seg.interval[c]]  # (G,) lower bound of each segment's interval
    hi = np.concatenate([cuts, [np.inf]])[seg.interval[c]]

    def matches(cond) -> np.ndarray:  # type: ignore[no-untyped-def]
        ok = np.ones(G, dtype=bool)
        if cond.input_tokens_gt is not None:
            ok &= lo >= cond.input_tokens_gt
        if cond.input_tokens_le is not None:
            ok &= hi <= cond.input_tokens_le
        if cond.attribute is not None:
            k = attrs.index(cond.attribute)
            wanted = set(cond.in_ or [])
            ok &= np.array([combos[a][k] in wanted for a in seg.combo[c]])
        return ok

    out: list[Lane] = []

    def walk(r: list[StepSpec] | Router, mass: np.ndarray, via: tuple[str, ...], path: tuple[Branch, ...]) -> None:
        if isinstance(r, list):
            out.append(Lane(tuple(r), mass, via, path))
            return
        if r.split is not None:
            for i, arm in enumerate(r.split):
                branch = Branch("split", i, f"arm {i + 1}", weight=arm.weight)
                walk(arm.route, mass * arm.weight, via, (*path, branch))
        elif r.rules is not None:
            left = np.ones(G, dtype=bool)
            for i, rule in enumerate(r.rules):
                hit = left if rule.when is None else left & matches(rule.when)
                label = "else" if rule.when is None else f"rule {i + 1}"
                walk(rule.route, mass * hit[None, :], via, (*path, Branch("rule", i, label, when=rule.when)))
                left = left & ~hit
        else:
            clf: ClassifierSpec = classifiers[r.classifier or ""]
            conf = np.array(clf.matrix())  # (true, predicted) over clf.labels
            order = [clf.labels.index(t) for t in tiers]  # the task's tiers in the classifier's label order
            for j, label in enumerate(clf.labels):
                branch = Branch("classifier", j, label, classifier=clf.name)
                walk((r.routes or {})[label], mass * conf[order, j][:, None], (*via, clf.name), (*path, branch))

    walk(route, np.ones((T, G)), (), ())
    return out


def window_warnings(ws: Worksheet) -> list[str]:
    """Every (category, model) where a policy may send prompts longer than the model's context window."""
    out = []
    for task in ws.tasks:
        windows = modelled_windows(ws, task)
        users: dict[str, list[str]] = {}
        for pol in ws.policies:
            if task.name not in pol.routes:
                continue
            for chain in pol.chains(task.name):
                for step in chain:
                    for name in step.names:
                        if name in windows and pol.name not in users.setdefault(name, []):
                            users[name].append(pol.name)
        for name, policies in users.items():
            share = _exceeds(task, windows[name])
            out.append(
                f"{task.name}: {pct(share)} of its prompts are longer than {name}'s context window "
                f"({windows[name]:,.0f} tokens); {', '.join(policies)} send them there: they skip that step "
                f"(or fail, with context_overflow: fail). compare shows the overflow share."
            )
    return out


def condition_text(cond: Condition) -> str:
    parts = []
    if cond.input_tokens_gt is not None:
        parts.append(f"input > {cond.input_tokens_gt:,.0f} tokens")
    if cond.input_tokens_le is not None:
        parts.append(f"input ≤ {cond.input_tokens_le:,.0f} tokens")
    if cond.attribute is not None:
        parts.append(f"{cond.attribute} in {', '.join(cond.in_ or [])}")
    return " and ".join(parts)


def _step_text(pol: PolicySpec, step: StepSpec, s: int, n: int) -> str:
    bits = []
    if step_gated(pol, step, s, n) and step.tool is None:
        bits.append("gated")
    if step.retries is not None:
        bits.append(f"{step.retries} retr{'y' if step.retries == 1 else 'ies'}")
    if step.on_reject is not None:
        bits.append(f"reject → {step.on_reject}")
    if isinstance(step.on_failure, dict):
        bits += [f"{t} → {v}" for t, v in step.on_failure.items()]
    elif step.on_failure is not None:
        bits.append(f"failure → {step.on_failure}")
    if step.deadline_s is not None:
        limit = "the budget" if step.deadline_s == "budget" else f"{step.deadline_s:g} s"
        bits.append(f"deadline {limit}" + (f" → {step.on_deadline}" if step.on_deadline is not None else ""))
    if step.latency_target_s is not None:
        bits.append(f"target {step.latency_target_s:g} s")
    if step.hedge:
        mode = "best of" if step.hedge_mode == "best" else "first of"
        what = f"{mode} {' | '.join(step.hedge)}"
    else:
        what = step.model or f"tool {step.tool}"
    return what + (f" [{', '.join(bits)}]" if bits else "")


def route_text(pol: PolicySpec, route: list[StepSpec] | Router) -> str:
    """A route in one line, as a reviewer reads it: ``a [gated] → b``, ``split 90% (…) / 10% (…)``,
    ``if input > 150,000 tokens: (…); else: (…)``, ``ticket-complexity says simple: (…); complex: (…)``."""
    if isinstance(route, list):
        return " → ".join(_step_text(pol, step, s, len(route)) for s, step in enumerate(route))
    if route.split is not None:
        return "split " + " / ".join(f"{arm.weight:.0%} ({route_text(pol, arm.route)})" for arm in route.split)
    if route.rules is not None:
        return "; ".join(
            f"{'if ' + condition_text(r.when) if r.when is not None else 'else'}: ({route_text(pol, r.route)})"
            for r in route.rules
        )
    routes = route.routes or {}
    return f"{route.classifier} says " + "; ".join(f"{k}: ({route_text(pol, r)})" for k, r in routes.items())
