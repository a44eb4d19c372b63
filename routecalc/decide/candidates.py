"""Every candidate route of a category, as chain arrays, scored by the expected-value engine in one batch.

A *candidate* is one chain of steps for one category, in the layout of :class:`~routecalc.chains.ChainTable`
(``model == -1`` pads; targets are a later step index or ``FAIL`` / ``DELIVER``). The families, over the models
allowed in the category (those with a pass rate there, minus what the constraints exclude):

* ``single``: one model, ungated;
* ``cascade``: an ordered sequence of 2..K distinct models, every step but the last gated with the category's
  validator, a reject or a provider failure escalating to the next step; the last step is ungated, as a
  ``kind: cascade`` policy with ``final_reject: deliver`` compiles (its gate could not change what is delivered);
* ``fallback``: an ordered sequence of 2..K distinct models, ungated, moving on only on provider failure;
* ``cascade+fallback``: a cascade of 2..K models whose last step, or every step, is followed by its *same-tier
  fallback*: the allowed model, preferably of another provider, whose expected cost per request in this
  category is closest to the step's (by log ratio; ties: higher pass rate, then catalog order). A failed step
  goes to its fallback, which is gated like the step and escalates to the next cascade step on a reject or a
  failure; a reject at the step skips its fallback. Why these two: a failure at an earlier step already
  escalates to the next one, so a fallback there only trades a dearer answer for a same-tier one (a small
  effect), while at the last step it is what keeps a provider failure from failing the request; every subset
  would triple the candidates for little. Chains longer than ``MAX_CHAIN`` (8) steps, and chains that would
  name a model twice, are left out.

Candidates are scored per category: a problem sliced to that one category (``C = 1``) with every candidate as a
policy (``P = N``), so one ``expected_values`` call scores them all with the engine's own arithmetic. This does
exactly the work needed; evaluating all candidates in every category and masking would do ``C`` times as much
(``benchmarks/bench_optimize.py`` measures both).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields, replace
from functools import lru_cache

import numpy as np

from routecalc.chains import DELIVER, FAIL, ChainTable, RoutingProblem, plain_chains
from routecalc.engine.ev import expected_values
from routecalc.worksheet import MAX_CHAIN

SINGLE, CASCADE, FALLBACK, CASCADE_FALLBACK = 0, 1, 2, 3
FAMILIES = ("single", "cascade", "fallback", "cascade+fallback")
DEFAULT_MAX_CHAIN = 3


@dataclass(frozen=True, eq=False)
class Candidates:
    """Candidate routes of one category: ``family`` ``(N,)``; step arrays ``(N, S)`` as in ``ChainTable``."""

    family: np.ndarray
    model: np.ndarray
    gated: np.ndarray
    on_reject: np.ndarray
    on_failure: np.ndarray

    def __len__(self) -> int:
        return len(self.family)

    @property
    def length(self) -> np.ndarray:
        """Steps per candidate ``(N,)``."""
        return (self.model >= 0).sum(-1)

    def take(self, ix: np.ndarray | list[int]) -> Candidates:
        ix = np.asarray(ix, dtype=np.int64)
        return Candidates(*(getattr(self, f.name)[ix] for f in fields(self)))

    def trimmed(self, steps: int) -> Candidates:
        """The first ``steps`` columns (callers make sure nothing but padding is cut)."""
        return Candidates(
            self.family, *(a[:, :steps] for a in (self.model, self.gated, self.on_reject, self.on_failure))
        )

    def padded(self, steps: int) -> Candidates:
        """The same candidates with ``steps`` columns (pads with ``model == -1``)."""
        extra = steps - self.model.shape[1]
        if extra <= 0:
            return self
        pad = lambda a, v: np.concatenate([a, np.full((len(a), extra), v, dtype=a.dtype)], axis=1)
        return Candidates(
            self.family,
            pad(self.model, -1),
            pad(self.gated, False),
            pad(self.on_reject, FAIL),
            pad(self.on_failure, FAIL),
        )


def concat(parts: list[Candidates]) -> Candidates:
    """Stack candidate blocks (padding to the longest chain)."""
    S = max((p.model.shape[1] for p in parts), default=1)
    parts = [p.padded(S) for p in parts]
    if not parts:
        e = np.zeros((0, 1), dtype=np.int64)
        return Candidates(np.zeros(0, dtype=np.int8), e, e.astype(bool), e, e)
    return Candidates(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Candidates)))


@lru_cache(maxsize=64)
def _permutations(n: int, k: int) -> np.ndarray:
    """Every ordered choice of ``k`` distinct items of ``range(n)``: ``(n! / (n - k)!, k)``, lexicographic."""
    return np.array(list(itertools.permutations(range(n), k)), dtype=np.int64).reshape(-1, k)


def _defaults(n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """A chain's default targets, as ``kind: chain`` compiles them: the next step; past the last step a reject
    is delivered (``final_reject: deliver``) and a failure fails."""
    nxt = np.arange(1, length + 1, dtype=np.int64)
    on_reject = np.broadcast_to(np.where(nxt < length, nxt, DELIVER), (n, length)).copy()
    on_failure = np.broadcast_to(np.where(nxt < length, nxt, FAIL), (n, length)).copy()
    return on_reject, on_failure


def _block(family: int, model: np.ndarray, gated_steps: int) -> Candidates:
    """Candidates with default targets whose first ``gated_steps`` steps are gated."""
    n, length = model.shape
    on_reject, on_failure = _defaults(n, length)
    gated = np.zeros((n, length), dtype=bool)
    gated[:, :gated_steps] = True
    return Candidates(np.full(n, family, dtype=np.int8), model, gated, on_reject, on_failure)


def _cascade_with_fallbacks(seq: np.ndarray, partner: np.ndarray, mask: tuple[bool, ...]) -> Candidates | None:
    """Cascades ``seq`` ``(n, k)`` where step ``i`` is followed by its fallback ``partner[m_i]`` when ``mask[i]``."""
    n, k = seq.shape
    length = k + sum(mask)
    if length > MAX_CHAIN:
        return None
    pos = np.cumsum([0] + [1 + b for b in mask])[:k]  # position of cascade step i in the chain
    model = np.full((n, length), -1, dtype=np.int64)
    gated = np.zeros((n, length), dtype=bool)
    on_reject, on_failure = _defaults(n, length)
    for i in range(k):
        model[:, pos[i]] = seq[:, i]
        gated[:, pos[i]] = i < k - 1
        if mask[i]:
            model[:, pos[i] + 1] = partner[seq[:, i]]
            gated[:, pos[i] + 1] = i < k - 1
            if i < k - 1:
                on_reject[:, pos[i]] = pos[i + 1]  # a reject skips the fallback: escalate to the next step
    keep = (model >= 0).all(1)
    srt = np.sort(model, axis=1)
    keep &= (srt[:, 1:] != srt[:, :-1]).all(1)  # no model twice in one chain
    if not keep.any():
        return None
    return Candidates(
        np.full(int(keep.sum()), CASCADE_FALLBACK, dtype=np.int8),
        model[keep],
        gated[keep],
        on_reject[keep],
        on_failure[keep],
    )


def enumerate_routes(allowed: np.ndarray, partner: np.ndarray, max_chain: int, gate: bool) -> Candidates:
    """Every candidate route over the ``allowed`` model indices (see module docstring).

    ``partner`` ``(M,)``: each model's same-tier fallback (-1: none); ``gate``: the category has a validator
    (without one there are no cascades). Deterministic order: family, length, then lexicographic by model index.
    """
    allowed = np.asarray(allowed, dtype=np.int64)
    n = len(allowed)
    parts = [_block(SINGLE, allowed[:, None], 0)] if n else []
    longest = min(max_chain, n, MAX_CHAIN)
    if gate:
        parts += [_block(CASCADE, allowed[_permutations(n, k)], k - 1) for k in range(2, longest + 1)]
    parts += [_block(FALLBACK, allowed[_permutations(n, k)], 0) for k in range(2, longest + 1)]
    if gate and (partner[allowed] >= 0).any():
        for k in range(2, longest + 1):
            seq = allowed[_permutations(n, k)]
            for mask in ((False,) * (k - 1) + (True,), (True,) * k):
                if (block := _cascade_with_fallbacks(seq, partner, mask)) is not None:
                    parts.append(block)
    return concat(parts)


def same_tier_partners(allowed: np.ndarray, cost: np.ndarray, quality: np.ndarray, provider: list[str]) -> np.ndarray:
    """Each allowed model's same-tier fallback ``(M,)`` (-1 for none): the allowed model of another provider
    (of the same provider only if no other is allowed) with the closest expected cost per request ``cost``
    ``(M,)``, by log ratio; ties: higher ``quality``, then catalog order."""
    M = len(cost)
    out = np.full(M, -1, dtype=np.int64)
    allowed = [int(a) for a in allowed]
    logc = np.log(np.maximum(cost, 1e-300))
    for m in allowed:  # at most M x M: the catalog, not the candidates
        others = [g for g in allowed if g != m]
        foreign = [g for g in others if provider[g] != provider[m]]
        pool = foreign or others
        if pool:
            out[m] = min(pool, key=lambda g: (abs(logc[g] - logc[m]), -quality[g], g))
    return out


# ---------------------------------------------------------------------------------------------------------
# Scoring with the expected-value engine


def chain_table(cands: Candidates, retries: int, backoff_s: float, tiers: int = 1, segments: int = 1) -> ChainTable:
    """Candidates as the policies of a one-category problem: ``(N, 1, 1, S)``."""
    at = lambda a: a[:, None, :]
    return plain_chains(
        at(cands.model),
        at(cands.gated),
        at(np.where(cands.model >= 0, retries, 0)),
        at(cands.on_reject),
        at(cands.on_failure),
        tiers=tiers,
        segments=segments,
        backoff_s=backoff_s,
    )


@dataclass(frozen=True, eq=False)
class Scores:
    """Expected values per candidate ``(N,)``: money per request in the worksheet currency, latency in seconds,
    rates as fractions of the category's requests. ``risk`` = ``cost_bad_answer x delivered_bad + cost_failed x
    failed`` (operational risk, as ``results`` computes it)."""

    cost: np.ndarray
    quality: np.ndarray
    delivered_bad: np.ndarray
    failed: np.ndarray
    latency: np.ndarray
    escalation: np.ndarray
    fallback: np.ndarray
    risk: np.ndarray

    def take(self, ix: np.ndarray | list[int]) -> Scores:
        ix = np.asarray(ix, dtype=np.int64)
        return Scores(*(getattr(self, f.name)[ix] for f in fields(self)))


def score(problem: RoutingProblem, category: int, cands: Candidates, retries: int, backoff_s: float) -> Scores:
    """Expected values of every candidate of ``category``.

    The problem is sliced to that one category (``C = 1``) and the candidates become its policies, so the
    category's parameters broadcast over them; candidates of equal chain length go in one ``expected_values``
    call each (at most ``MAX_CHAIN`` calls), so no call walks steps its chains do not have.
    """
    out = {f.name: np.zeros(len(cands)) for f in fields(Scores)}
    length = cands.length
    base = problem.take_categories([category], problem.chains)
    tt = base.tasks
    shape = {"tiers": problem.chains.lane_weight.shape[2], "segments": base.segments.prob.shape[1]}
    for L in np.unique(length):
        ix = np.flatnonzero(length == L)
        chains = chain_table(cands.take(ix).trimmed(int(L)), retries, backoff_s, **shape)
        ev = expected_values(replace(base, chains=chains))
        out["cost"][ix] = ev.cost[:, 0]
        out["quality"][ix] = ev.quality[:, 0]
        out["delivered_bad"][ix] = ev.delivered_bad[:, 0]
        out["failed"][ix] = ev.failed[:, 0]
        out["latency"][ix] = ev.latency[:, 0]
        out["escalation"][ix] = ev.escalation[:, 0]
        out["fallback"][ix] = ev.fallback[:, 0]
        out["risk"][ix] = ev.delivered_bad[:, 0] * tt.cost_bad[0] + ev.failed[:, 0] * tt.cost_failed[0]
    return Scores(**out)
