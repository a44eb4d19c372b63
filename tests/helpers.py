"""Small worksheet builders for tests: every number visible, nothing hidden in fixtures."""

from __future__ import annotations

import copy
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import routecalc


def fixed_model(name: str, price_in: float, price_out: float, ttft: float = 0.5, tpot: float = 0.01, **kw: Any) -> dict:
    """A catalog entry with fixed (not lognormal) latency: answer latency = ttft + y * tpot."""
    return {
        "name": name,
        "provider": kw.pop("provider", "openai"),
        "price_in": price_in,
        "price_out": price_out,
        "latency": {"ttft_s": ttft, "tpot_s": tpot},
        **kw,
    }


def two_model_sheet(**top: Any) -> dict:
    """One category (1000 tokens in, 500 out, fixed), a small and a large model, no failures."""
    sheet = {
        "schema_version": 1,
        "name": "two models",
        "volume": {"requests_per_month": 1000},
        "models": [
            fixed_model("small", 1.0, 2.0, ttft=0.5, tpot=0.01),  # 1000*1e-6 + 500*2e-6 = $0.002
            fixed_model("large", 10.0, 20.0, ttft=1.0, tpot=0.02),  # 1000*1e-5 + 500*2e-5 = $0.020
        ],
        "tasks": [
            {
                "name": "t",
                "traffic_share": 1.0,
                "tokens_in": 1000,
                "tokens_out": 500,
                "quality_threshold": 0.9,
                "pass_rates": {"small": 0.8, "large": 0.95},
                "validator": {"catch": 0.9, "false_reject": 0.1, "latency_s": 0.2},
            }
        ],
        "policies": [],
    }
    sheet.update(top)
    return sheet


def with_policies(sheet: dict, *policies: dict) -> dict:
    out = copy.deepcopy(sheet)
    out["policies"] = list(policies)
    return out


def ev_of(sheet: dict, policy: str) -> dict[str, float]:
    """Traffic-weighted EV metrics of one policy of a worksheet dict."""
    ws = routecalc.validate_worksheet(sheet)
    problem = routecalc.compile_worksheet(ws)
    ev = routecalc.expected_values(problem)
    p = problem.chains.names.index(policy)
    w = problem.tasks.share
    names = ("quality", "delivered_bad", "failed", "human", "latency", "escalation", "fallback", "gate_cost")
    out = {k: float(getattr(ev, k)[p] @ w) for k in names}
    out["cost"] = float(ev.cost[p] @ w)
    out["late"] = float(ev.late[p] @ w) if ev.late is not None else 0.0
    out["calls"] = ev.calls[p].T @ w
    out["answered"] = ev.answered[p].T @ w
    return out


class Hang(BaseException):
    """Raised by :func:`time_limit`: a BaseException, so no ``except Exception`` in the code under test can swallow
    it."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the block runs longer than ``seconds``: a hang guard, not a speed
    claim; the limit is many times what any case takes."""

    def expired(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
