"""The joint law of pass/fail across models, per category, compiled to a mixture of *states*.

What is random about quality is, per request, whether each model's answer would be good (``../shared/MODEL.md``,
"Correlated outcomes"). Every way of describing that law becomes, per category, a few states ``k`` with a
weight ``w_k`` and a conditional pass probability ``q_k[m]`` of a try on model ``m`` given the state; given the
state, tries are independent. The expected-value engine runs the chain arithmetic once per state and mixes by
weight, so it stays closed form:

* independence (the default): one state, ``q = `` the pass rates — the engines' numbers are unchanged;
* an outcome table (``patterns``, or the ``conditional`` shorthand for two models): one state per pattern, with
  ``q`` 1 or 0 for the table's models (a later step on the same model reuses the request's outcome) and the
  plain pass rate for the others;
* one-factor latent difficulty with correlation ``rho`` (a Gaussian copula): a request has difficulty
  ``Z ~ N(0, 1)`` and ``P(good | Z = z) = Phi((Phi^-1(q) - sqrt(rho) z) / sqrt(1 - rho))``; the states are
  quadrature nodes in ``z`` (see :func:`latent_nodes`). Monte Carlo draws ``Z`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.worksheet import TaskSpec, Worksheet

INDEPENDENT, TABLE, LATENT = 0, 1, 2

GH_NODES = 48  # Gauss-Hermite nodes for rho <= GH_MAX_RHO
GH_MAX_RHO = 0.5
PANEL_NODES = 8  # Gauss-Legendre nodes per panel of the composite rule (rho > GH_MAX_RHO)
Z_SPAN = 7.5  # composite rule covers |z| <= 7.5: the mass outside is 6.4e-14
TRANSITION_OFFSETS = (-4.0, -1.5, -0.5, 0.0, 0.5, 1.5, 4.0)  # breakpoints around each model's transition, in widths


@dataclass(frozen=True, eq=False)
class OutcomeStates:
    """Per-category mixtures of outcome states, flattened: state ``k`` belongs to category ``cat[k]``.

    Expected-value states: ``cat``, ``tier`` ``(K,)``; ``weight`` ``(..., K)`` and ``q`` ``(..., K, M)`` (leading
    axes: parameter draws, for uncertainty). States of one category are contiguous, from ``start[c]`` for
    ``count[c]`` states; their weights sum to 1. ``tier`` is the state's difficulty tier (0 without tiers).

    Monte Carlo draws a *request* state per request (a table pattern or a tier; one state otherwise), then,
    for latent difficulty, ``Z``: ``mc_start``, ``mc_count`` ``(C,)``, ``mc_weight``, ``mc_tier`` ``(K_mc,)``,
    ``mc_q`` ``(K_mc, M)`` (pass probability given the request state; latent categories use
    ``mc_a = Phi^-1(q)`` and ``rho`` instead). ``kind``, ``rho`` ``(C,)``; ``marginal`` ``(C, M)``.
    """

    kind: np.ndarray
    rho: np.ndarray
    marginal: np.ndarray
    cat: np.ndarray
    tier: np.ndarray
    start: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    q: np.ndarray
    mc_start: np.ndarray
    mc_count: np.ndarray
    mc_weight: np.ndarray
    mc_tier: np.ndarray
    mc_q: np.ndarray
    mc_a: np.ndarray
    tiers: tuple[tuple[str, ...], ...]  # per category, its tier labels (empty without tiers)

    @property
    def independent(self) -> bool:
        """Every category independent and untiered: one state each, q = the pass rates."""
        return bool((self.kind == INDEPENDENT).all()) and not any(self.tiers)


def latent_nodes(rho: float, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes ``z`` and weights (summing to 1) for ``E[g(Z)]``, ``Z ~ N(0, 1)``, in the latent model.

    ``g`` is a polynomial in ``Phi((a_m - sqrt(rho) z) / sqrt(1 - rho))``, which steps from 1 to 0 around
    ``z_m = a_m / sqrt(rho)`` over a width ``sqrt((1 - rho) / rho)``. For ``rho <= 0.5`` that is smooth and 48
    Gauss-Hermite nodes are exact to 1e-13; above, a composite Gauss-Legendre rule (8 nodes per panel: unit
    panels over ``|z| <= 7.5`` plus breakpoints at ``z_m + {0, ±0.5, ±1.5, ±4}`` widths) follows the steps.
    Tests check both against adaptive quadrature to 1e-10 for rho up to 0.999.
    """
    if rho <= GH_MAX_RHO:
        z, w = np.polynomial.hermite_e.hermegauss(GH_NODES)
        return z, w / w.sum()
    width = np.sqrt((1 - rho) / rho)
    breaks = set(np.arange(-Z_SPAN, Z_SPAN + 0.5, 1.0).tolist())
    for am in a[np.isfinite(a)]:
        zm = am / np.sqrt(rho)
        breaks.update((zm + width * np.array(TRANSITION_OFFSETS)).tolist())
    b = np.array(sorted(v for v in breaks if -Z_SPAN <= v <= Z_SPAN))
    b = b[np.concatenate([[True], np.diff(b) > 1e-12])]
    xg, wg = np.polynomial.legendre.leggauss(PANEL_NODES)
    lo, hi = b[:-1, None], b[1:, None]
    z = (lo + (hi - lo) * (xg + 1) / 2).ravel()
    w = ((hi - lo) / 2 * wg).ravel() * np.exp(-z * z / 2)
    return z, w / w.sum()


def latent_nodes_batch(rho: float, a: np.ndarray, panel_nodes: int = PANEL_NODES) -> tuple[np.ndarray, np.ndarray]:
    """:func:`latent_nodes` for a batch of marginals ``a`` ``(..., M)``: nodes and weights ``(..., Z)``.

    The same rule, vectorized over the leading axes (parameter draws): for ``rho > 0.5`` the breakpoints move
    with ``a``, so each batch row gets its own nodes. To keep one node count per row, breakpoints outside
    ``|z| <= 7.5`` (and those of models without a pass rate) are clipped to the edge instead of dropped, and
    near-duplicates are kept: both only add panels of zero (or < 1e-12) width, i.e. nodes of zero weight, so with
    the default ``panel_nodes`` the rule is :func:`latent_nodes`' to 1e-12 (tested). Fewer nodes per panel trade
    accuracy for speed (4: within 1e-7, tested).
    """
    lead = a.shape[:-1]
    if rho <= GH_MAX_RHO:
        z, w = latent_nodes(rho, np.empty(0))  # Gauss-Hermite nodes do not depend on the marginals
        return np.broadcast_to(z, (*lead, len(z))), np.broadcast_to(w, (*lead, len(w)))
    width = np.sqrt((1 - rho) / rho)
    grid = np.arange(-Z_SPAN, Z_SPAN + 0.5, 1.0)
    unit = np.broadcast_to(grid, (*lead, len(grid)))
    with np.errstate(invalid="ignore"):
        steps = a[..., :, None] / np.sqrt(rho) + width * np.array(TRANSITION_OFFSETS)
    steps = np.where(np.isfinite(steps), steps, Z_SPAN).reshape(*lead, -1)  # no rate, or rate 0 or 1: no step
    b = np.sort(np.concatenate([unit, np.clip(steps, -Z_SPAN, Z_SPAN)], axis=-1), axis=-1)
    xg, wg = np.polynomial.legendre.leggauss(panel_nodes)
    lo, hi = b[..., :-1, None], b[..., 1:, None]
    z = (lo + (hi - lo) * (xg + 1) / 2).reshape(*lead, -1)
    w = ((hi - lo) / 2 * wg).reshape(*lead, -1) * np.exp(-z * z / 2)
    return z, w / w.sum(axis=-1, keepdims=True)


def latent_q(rho: float, a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``Phi((a - sqrt(rho) z) / sqrt(1 - rho))``: ``(..., Z) x (..., M) -> (..., Z, M)``; NaN stays NaN."""
    from scipy.special import ndtr

    with np.errstate(invalid="ignore"):
        return ndtr((a[..., None, :] - np.sqrt(rho) * z[..., :, None]) / np.sqrt(1 - rho))


def conditional_probs(q_first: np.ndarray, q_second: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """The two-model table of a conditional rate: P(both pass), P(only first), P(only second), P(neither).

    ``(...) -> (..., 4)``; ``rate`` is the second model's pass rate on what the first failed (see
    :func:`routecalc.worksheet.schema.conditional_range` for when that is feasible). Entries a rounding error
    below zero are clipped to zero.
    """
    probs = [
        q_second - (1 - q_first) * rate,
        q_first - q_second + (1 - q_first) * rate,
        (1 - q_first) * rate,
        (1 - q_first) * (1 - rate),
    ]
    return np.maximum(np.stack(np.broadcast_arrays(*probs), axis=-1), 0.0)


def catalog_names(ws: Worksheet) -> list[str]:
    """The engines' catalog: the models, then the tools (a tool is answered like a model: hit or miss)."""
    return [m.name for m in ws.models] + [t.name for t in ws.tools]


def _tier_rates(t: TaskSpec, names: list[str]) -> list[tuple[str, float, np.ndarray]]:
    """(tier label, share, pass rate per catalog entry) for each tier, or one untiered pseudo-tier."""
    hits = {tool: h.rate * h.quality for tool, h in t.tool_hit_rates.items()}
    if t.tiers is None:
        rates = {**t.rates, **hits}
        return [("", 1.0, np.array([rates.get(n, np.nan) for n in names], dtype=float))]
    out = []
    for label, tier in t.tiers.items():
        rates = {m: r.rate for m, r in tier.pass_rates.items()} | hits
        out.append((label, tier.share, np.array([rates.get(n, np.nan) for n in names], dtype=float)))
    return out


def outcome_states(ws: Worksheet) -> OutcomeStates:
    """Compile every category's joint law (see module docstring) into flattened states."""
    names = catalog_names(ws)
    ix = {n: i for i, n in enumerate(names)}
    C, M = len(ws.tasks), len(names)
    marginal = np.full((C, M), np.nan)
    kind = np.zeros(C, dtype=np.int8)
    rho = np.zeros(C)
    ev: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per category: weight, q, tier
    mc: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # weight, q, tier, a
    for c, t in enumerate(ws.tasks):
        o = t.outcomes
        tiers = _tier_rates(t, names)
        marginal[c] = sum(share * q for _, share, q in tiers)
        if len(tiers) == 1:
            marginal[c] = tiers[0][2]  # bit for bit, not 1.0 * q
        if o is not None and o.patterns is None and o.conditional is None and o.correlation:
            from scipy.special import ndtri

            kind[c], rho[c] = LATENT, o.correlation
            w_ev, q_ev, tier_ev, w_mc, a_mc = [], [], [], [], []
            for k, (_, share, base) in enumerate(tiers):
                with np.errstate(invalid="ignore"):
                    a = ndtri(base)
                z, w = latent_nodes(o.correlation, a)
                w_ev.append(share * w)
                q_ev.append(latent_q(o.correlation, a, z))
                tier_ev.append(np.full(w.size, k))
                w_mc.append(share)
                a_mc.append(a)
            ev.append((np.concatenate(w_ev), np.concatenate(q_ev), np.concatenate(tier_ev)))
            mc.append((np.array(w_mc), np.array([b for _, _, b in tiers]), np.arange(len(tiers)), np.array(a_mc)))
            continue
        if o is None or o.correlation is not None:  # independent (within each tier)
            w = np.array([share for _, share, _ in tiers]) if len(tiers) > 1 else np.ones(1)
            q = np.array([b for _, _, b in tiers])
            state = (w, q, np.arange(len(tiers)))
            ev.append(state)
            mc.append((*state, np.full(q.shape, np.nan)))
            continue
        kind[c] = TABLE
        base = tiers[0][2]
        if o.conditional is not None:
            cond = o.conditional
            q1, q2, r = t.rates[cond.given_failed], t.rates[cond.model], cond.pass_rate.rate
            table_models = [cond.given_failed, cond.model]
            sets = [frozenset(table_models), frozenset([cond.given_failed]), frozenset([cond.model]), frozenset()]
            probs = conditional_probs(np.float64(q1), np.float64(q2), np.float64(r))  # validated feasible
        else:
            table_models, sets, probs = o.table()
        q = np.repeat(base[None, :], len(sets), axis=0)
        for k, st in enumerate(sets):
            for m in table_models:
                q[k, ix[m]] = 1.0 if m in st else 0.0
        w = np.array(probs, dtype=float)
        state = (w / w.sum(), q, np.zeros(len(sets), dtype=np.int64))
        ev.append(state)
        mc.append((*state, np.full(q.shape, np.nan)))
    count = np.array([w.size for w, _, _ in ev], dtype=np.int64)
    mc_count = np.array([w.size for w, *_ in mc], dtype=np.int64)
    return OutcomeStates(
        kind=kind,
        rho=rho,
        marginal=marginal,
        cat=np.repeat(np.arange(C), count),
        tier=np.concatenate([tr for _, _, tr in ev]).astype(np.int64),
        start=np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64),
        count=count,
        weight=np.concatenate([w for w, _, _ in ev]),
        q=np.concatenate([q for _, q, _ in ev], axis=0).reshape(-1, M),
        mc_start=np.concatenate([[0], np.cumsum(mc_count)[:-1]]).astype(np.int64),
        mc_count=mc_count,
        mc_weight=np.concatenate([w for w, *_ in mc]),
        mc_tier=np.concatenate([tr for _, _, tr, _ in mc]).astype(np.int64),
        mc_q=np.concatenate([q for _, q, _, _ in mc], axis=0).reshape(-1, M),
        mc_a=np.concatenate([a for *_, a in mc], axis=0).reshape(-1, M),
        tiers=tuple(tuple(t.tiers or ()) for t in ws.tasks),
    )


def assumed_independent(oc: OutcomeStates) -> np.ndarray:
    """``(C,)``: categories whose joint law is the default independence (no table, correlation or tiers)."""
    return (oc.kind == INDEPENDENT) & np.array([not t for t in oc.tiers])


def independent_version(oc: OutcomeStates) -> OutcomeStates:
    """The same marginals, every category independent: what the estimate would be without the joint laws."""
    C = len(oc.count)
    ones = np.ones(C, dtype=np.int64)
    first = np.arange(C, dtype=np.int64)
    return OutcomeStates(
        kind=np.zeros(C, dtype=np.int8),
        rho=np.zeros(C),
        marginal=oc.marginal,
        cat=first,
        tier=np.zeros(C, dtype=np.int64),
        start=first,
        count=ones,
        weight=np.ones(C),
        q=oc.marginal.copy(),
        mc_start=first,
        mc_count=ones,
        mc_weight=np.ones(C),
        mc_tier=np.zeros(C, dtype=np.int64),
        mc_q=oc.marginal.copy(),
        mc_a=np.full(oc.marginal.shape, np.nan),
        tiers=tuple(() for _ in range(C)),
    )


def _ranges(start: np.ndarray, count: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """The flat state indices of categories ``ix`` (contiguous blocks ``start[c] .. start[c] + count[c]``)."""
    if len(ix) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(start[c], start[c] + count[c]) for c in ix]).astype(np.int64)


def take_categories(oc: OutcomeStates, ix: np.ndarray) -> OutcomeStates:
    """The outcome states of categories ``ix`` only (in that order), renumbered ``0 .. len(ix) - 1``."""
    ix = np.asarray(ix, dtype=np.int64)
    ev, mc = _ranges(oc.start, oc.count, ix), _ranges(oc.mc_start, oc.mc_count, ix)
    count, mc_count = oc.count[ix], oc.mc_count[ix]
    return OutcomeStates(
        kind=oc.kind[ix],
        rho=oc.rho[ix],
        marginal=oc.marginal[ix],
        cat=np.repeat(np.arange(len(ix)), count),
        tier=oc.tier[ev],
        start=np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64),
        count=count,
        weight=oc.weight[..., ev],
        q=oc.q[..., ev, :],
        mc_start=np.concatenate([[0], np.cumsum(mc_count)[:-1]]).astype(np.int64),
        mc_count=mc_count,
        mc_weight=oc.mc_weight[mc],
        mc_tier=oc.mc_tier[mc],
        mc_q=oc.mc_q[mc],
        mc_a=oc.mc_a[mc],
        tiers=tuple(oc.tiers[c] for c in ix),
    )
