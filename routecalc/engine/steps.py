"""Each policy's chain and model parameters per (step, key): the tables both walks read."""

from __future__ import annotations

import numpy as np

from routecalc.chains import RoutingProblem
from routecalc.engine.billing import batch_shares, token_prices
from routecalc.engine.walk import StepTable

NEVER_S = 1e300  # a tool's timeout: it never times out


def step_tables(problem: RoutingProblem) -> list[StepTable]:
    """Each policy's chain and model parameters per (step, key = category x L + lane), for the walk."""
    mt, tt, ch, sg = problem.models, problem.tasks, problem.chains, problem.segments
    P, C, L, S = ch.shape
    model = ch.model.transpose(0, 3, 1, 2).reshape(P, S, C * L)  # (P, S, K)
    valid = model >= 0
    m = np.where(valid, model, 0)
    c = np.repeat(np.arange(C), L)[None, None, :]
    step = lambda a: a.transpose(0, 3, 1, 2).reshape(P, S, C * L)
    tool = step(ch.tool) & valid
    gated = (step(ch.gated) & valid) | tool
    validator = gated & ~tool
    g = lambda a, fill=0.0: np.where(valid, a[m], fill)
    err = mt.errors[m]  # (P, S, K, 4)
    cum = np.cumsum(err, axis=-1)
    on_failure = ch.on_failure.transpose(0, 3, 1, 2, 4).reshape(P, S, C * L, -1)
    b_model = step(ch.hedge)  # a hedged step's second model ("leg b")
    b_valid = b_model >= 0
    mb = np.where(b_valid, b_model, 0)
    gb = lambda a, fill=0.0: np.where(b_valid, a[mb], fill)
    batch = batch_shares(tt, step(ch.batch_share), c)

    def moded(mm: np.ndarray, ok: np.ndarray) -> dict[str, np.ndarray]:
        """Per-token prices ``(4, P, S, K)`` by billing mode: standard, long-context, batch, batch long-context."""
        modes = [token_prices(mt, tt, mm, c, long, batched) for batched in (0.0, 1.0) for long in (False, True)]
        return {
            key: np.where(ok, np.stack([np.broadcast_to(getattr(pr, attr), mm.shape) for pr in modes]), 0.0)
            for key, attr in (("price_in", "fail_in"), ("price_in_eff", "answer_in"), ("price_out", "answer_out"))
        }

    b = {
        "fail": gb(mt.fail),
        **moded(mb, b_valid),
        "long_above": np.where(b_valid, sg.long_above[c, mb], np.inf),
        "call_cost": gb(mt.call_cost),
        "q": np.where(b_valid, np.nan_to_num(tt.pass_rate[c, mb]), 0.0),
        "timeout_s": np.minimum(gb(mt.timeout_s, np.inf), NEVER_S),
        "error_latency_s": gb(mt.error_latency_s),
        "window": np.where(b_valid, sg.window[c, mb], np.inf),
        "cum0": np.where(b_valid, mt.errors[mb, 0], 0.0),
    }
    cols = {
        "fail": g(mt.fail),
        **moded(m, valid),
        "long_above": np.where(valid, sg.long_above[c, m], np.inf),
        "batch_share": np.where(valid, batch, 0.0),
        "ratio": g(mt.output_ratio),
        "call_cost": g(mt.call_cost),
        "q": np.where(valid, np.nan_to_num(tt.pass_rate[c, m]), 0.0),
        "catch": np.where(tool, tt.tool_catch[c, m], tt.catch[c]),
        "false_reject": np.where(tool, 0.0, np.broadcast_to(tt.false_reject[c], model.shape)),
        "gate_cost_call": np.where(validator, tt.gate_cost_call[c], 0.0),
        "gate_cost_token": np.where(validator, tt.gate_cost_token[c], 0.0),
        "gate_latency_s": np.where(validator, tt.gate_latency_s[c], 0.0),
        "timeout_s": np.minimum(g(mt.timeout_s, np.inf), NEVER_S),  # finite: 0 timeouts x "never" is 0 s
        "error_latency_s": g(mt.error_latency_s),
        "window": np.where(valid, sg.window[c, m], np.inf),
        "cum0": cum[..., 0],
        "cum1": cum[..., 1],
        "cum2": cum[..., 2],
        "deadline_s": step(ch.deadline_s),
        **{f"b_{k}": v for k, v in b.items()},
        "model": model,
        "retries": step(ch.retries),
        "gated": gated.astype(np.int64),
        "on_reject": step(ch.on_reject),
        "on_overflow": step(ch.on_overflow),
        "on_timeout": on_failure[..., 0],
        "on_5xx": on_failure[..., 1],
        "on_429": on_failure[..., 2],
        "on_refusal": on_failure[..., 3],
        "on_deadline": step(ch.on_deadline),
        "b_model": b_model,
        "hedge_best": step(ch.hedge_best).astype(np.int64),
        "cancel_loser": step(ch.cancel_loser).astype(np.int64),
        "ttft_mu": g(mt.ttft_mu),
        "ttft_sigma": g(mt.ttft_sigma),
        "tpot_mu": g(mt.tpot_mu, -np.inf),
        "tpot_sigma": g(mt.tpot_sigma),
        "b_ttft_mu": gb(mt.ttft_mu),
        "b_ttft_sigma": gb(mt.ttft_sigma),
        "b_tpot_mu": gb(mt.tpot_mu, -np.inf),
        "b_tpot_sigma": gb(mt.tpot_sigma),
        "b_ratio": gb(mt.output_ratio),
    }
    pick = lambda v, p: v[:, p] if v.ndim == 4 else v[p]  # (4, P, S, K) by billing mode, or (P, S, K)
    return [StepTable(**{k: np.ascontiguousarray(pick(v, p)) for k, v in cols.items()}) for p in range(P)]
