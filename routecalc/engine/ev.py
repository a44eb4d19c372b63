"""Expected-value engine: closed-form means over policies x categories, vectorized with numpy.

For a step ``s`` of a chain reached with probability ``R_s``, model failure probability ``f`` and ``r``
retries (``../shared/MODEL.md``):

* abandon probability ``F = f^(1+r)``; expected failed tries ``f (1 - f^(1+r)) / (1 - f)``;
* answer cost ``E[x] p_in + E[y] p_out (+ cached share x (p_cache - p_in))`` paid with probability ``1 - F``;
* a gated step delivers ``A_good = q (1 - false_reject)`` good and ``A_bad = (1 - q)(1 - catch)`` bad
  answers and sends the rest to ``on_reject``; ``R_s F`` goes to ``on_failure``.

Reach probabilities are propagated step by step (chains only point forward), with every array shaped
``(P, C, S)`` = (policies, categories, chain steps). Nothing here samples or does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.chains import DELIVER, FAIL, HUMAN, RoutingProblem


@dataclass(frozen=True, eq=False)
class Metrics:
    """Per-request means by policy and category: shape ``(P, C)``, ``(P, C, M)`` where noted.

    Money is in the worksheet currency per request; latency in seconds; rates are fractions of requests.
    """

    token_cost: np.ndarray  # (P, C, M) token spend by model (failed tries too, if billed)
    gate_cost: np.ndarray  # validator spend
    human_cost: np.ndarray  # human review spend
    quality: np.ndarray  # share delivered with a good answer (human review counts as good)
    delivered_bad: np.ndarray  # share delivered with a bad answer
    failed: np.ndarray  # share with no answer
    human: np.ndarray  # share resolved by human review
    latency: np.ndarray  # mean end-to-end seconds (every try and gate paid)
    escalation: np.ndarray  # share rejected by at least one gate
    fallback: np.ndarray  # share that abandoned at least one step on provider failure
    answered: np.ndarray  # (P, C, M) share whose delivered answer came from each model
    calls: np.ndarray  # (P, C, M) provider tries per request, failed ones included

    @property
    def cost(self) -> np.ndarray:
        """Total spend per request ``(P, C)``: tokens + gates + human review."""
        return self.token_cost.sum(axis=-1) + self.gate_cost + self.human_cost


def _lognormal_mean(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(mu + sigma**2 / 2)


def _route(flow: np.ndarray, target: np.ndarray, inflow: np.ndarray) -> None:
    """Add ``flow`` (P, C) into ``inflow[..., target]`` where target is a step index."""
    steps = np.arange(inflow.shape[-1])
    inflow += flow[..., None] * (target[..., None] == steps)


def expected_values(problem: RoutingProblem) -> Metrics:
    """Closed-form expected metrics of every policy in every category (see module docstring)."""
    mt, tt, ch = problem.models, problem.tasks, problem.chains
    P, C, S = ch.shape
    M = len(mt.names)
    valid = ch.model >= 0
    m = np.where(valid, ch.model, 0)
    cat = np.arange(C)[None, :, None]

    f = mt.fail[m]
    r = ch.retries
    F = np.where(valid, f ** (1 + r), 0.0)
    ok = np.where(valid, 1 - F, 0.0)
    n_fail = f * (1 - f ** (1 + r)) / (1 - f)  # expected failed tries per reached step
    n_retry = f * (1 - f**r) / (1 - f)  # expected retries (each pays the backoff)
    t = mt.timeout_share[m]
    fail_latency = (
        n_fail * (t * mt.timeout_s[m] + (1 - t) * mt.error_latency_s[m]) + ch.backoff_s[:, None, None] * n_retry
    )

    ex = tt.x_mean[cat]
    ey = tt.y_mean[cat] * mt.output_ratio[m]
    p_in = mt.price_in[m]
    answer_cost = ex * p_in + ey * mt.price_out[m] + tt.cached_share[cat] * ex * (mt.price_cache[m] - p_in)
    failed_try_cost = n_fail * ex * p_in if problem.bill_failed_input else np.zeros_like(ex * p_in)
    gate_cost = np.where(ch.gated, tt.gate_cost_call[cat] + (ex + ey) * tt.gate_cost_token[cat], 0.0)
    answer_latency = _lognormal_mean(mt.ttft_mu, mt.ttft_sigma)[m] + ey * _lognormal_mean(mt.tpot_mu, mt.tpot_sigma)[m]
    gate_latency = np.where(ch.gated, tt.gate_latency_s[cat], 0.0)

    q = np.where(valid, np.nan_to_num(tt.pass_rate[cat, m]), 0.0)
    catch, false_reject = tt.catch[cat], tt.false_reject[cat]
    a_good = np.where(ch.gated, q * (1 - false_reject), q)
    a_bad = np.where(ch.gated, (1 - q) * (1 - catch), 1 - q)
    rej_good = np.where(ch.gated, q * false_reject, 0.0)
    rej_bad = np.where(ch.gated, (1 - q) * catch, 0.0)

    reach = np.zeros((P, C, S))
    inflow = np.zeros((P, C, S))
    inflow_no_reject = np.zeros((P, C, S))
    inflow_no_abandon = np.zeros((P, C, S))
    inflow[..., 0] = inflow_no_reject[..., 0] = inflow_no_abandon[..., 0] = 1.0
    deliver_good = np.zeros((P, C, S))  # rejected answers delivered anyway (good / bad)
    deliver_bad = np.zeros((P, C, S))
    human = np.zeros((P, C))
    failed = np.zeros((P, C))
    escalation = np.zeros((P, C))
    fallback = np.zeros((P, C))
    for s in range(S):
        R = inflow[..., s] * valid[..., s]
        reach[..., s] = R
        fail_flow = R * F[..., s]
        ans = R * ok[..., s]
        rej_flow = ans * (rej_good[..., s] + rej_bad[..., s])
        tf, tr = ch.on_failure[..., s], ch.on_reject[..., s]
        _route(fail_flow, tf, inflow)
        _route(rej_flow, tr, inflow)
        failed += np.where(tf == FAIL, fail_flow, 0.0) + np.where(tr == FAIL, rej_flow, 0.0)
        human += np.where(tr == HUMAN, rej_flow, 0.0)
        deliver_good[..., s] = np.where(tr == DELIVER, ans * rej_good[..., s], 0.0)
        deliver_bad[..., s] = np.where(tr == DELIVER, ans * rej_bad[..., s], 0.0)

        # "at least once" rates: follow only the paths that have not yet been rejected / abandoned
        R_nr = inflow_no_reject[..., s] * valid[..., s]
        escalation += R_nr * ok[..., s] * (rej_good[..., s] + rej_bad[..., s])
        _route(R_nr * F[..., s], tf, inflow_no_reject)
        R_na = inflow_no_abandon[..., s] * valid[..., s]
        fallback += R_na * F[..., s]
        _route(R_na * ok[..., s] * (rej_good[..., s] + rej_bad[..., s]), tr, inflow_no_abandon)

    delivered = reach * ok * (a_good + a_bad) + deliver_good + deliver_bad
    onehot = (m[..., None] == np.arange(M)) & valid[..., None]  # (P, C, S, M)
    by_model = lambda v: np.einsum("pcs,pcsm->pcm", v, onehot)
    tokens = reach * (ok * answer_cost + failed_try_cost)
    latency = (reach * (fail_latency + ok * (answer_latency + gate_latency))).sum(-1)
    latency += human * ch.human_latency_s[:, None]
    return Metrics(
        token_cost=by_model(tokens),
        gate_cost=(reach * ok * gate_cost).sum(-1),
        human_cost=human * ch.human_cost[:, None],
        quality=(reach * ok * a_good + deliver_good).sum(-1) + human,
        delivered_bad=(reach * ok * a_bad + deliver_bad).sum(-1),
        failed=failed,
        human=human,
        latency=latency,
        escalation=escalation,
        fallback=fallback,
        answered=by_model(delivered),
        calls=by_model(reach * (n_fail + ok)),
    )
