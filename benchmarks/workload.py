"""The benchmark workload of ../shared/MODEL.md, as a worksheet dict (so it runs through the real loader)."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.6448536269514722
SHARES = [0.2, 0.15, 0.12, 0.1, 0.1, 0.09, 0.08, 0.06, 0.05, 0.05]
IN_MEDIANS = [800, 1500, 400, 3000, 600, 1200, 2500, 300, 5000, 900]
OUT_MEDIANS = [300, 500, 150, 800, 200, 400, 700, 100, 1000, 250]
PRICE_IN = [0.15, 0.5, 3, 10]  # $/1M
PRICE_OUT = [0.6, 1.5, 15, 30]
TTFT_MEDIANS = [0.3, 0.4, 0.8, 1.5]
TPOT = [0.005, 0.008, 0.02, 0.03]
CASCADES = [(0, 1, 2), (1, 2, 3), (0, 2, 3)]


def band(median: float, sigma: float) -> dict:
    """A lognormal given by its median and log-sd, in the worksheet's p50/p95 form."""
    return {"p50": median, "p95": median * math.exp(Z95 * sigma)}


def benchmark_worksheet(seed: int = 0) -> dict:
    """10 categories, 4 models, three 3-step cascades with every step gated (pass rates drawn in [0.05, 0.99])."""
    rng = np.random.default_rng(seed)
    names = [f"m{i}" for i in range(4)]
    models = [
        {
            "name": names[i],
            "provider": "bench",
            "price_in": PRICE_IN[i],
            "price_out": PRICE_OUT[i],
            "latency": {"ttft_s": band(TTFT_MEDIANS[i], 0.5), "tpot_s": TPOT[i]},
            "failure_rate": 0.02,
            "timeout_share": 1.0,
            "timeout_s": 10.0,
        }
        for i in range(4)
    ]
    tasks = [
        {
            "name": f"c{c}",
            "traffic_share": SHARES[c],
            "tokens_in": band(IN_MEDIANS[c], 0.8),
            "tokens_out": band(OUT_MEDIANS[c], 0.6),
            "quality_threshold": 0.5,
            "pass_rates": {n: float(q) for n, q in zip(names, rng.uniform(0.05, 0.99, 4), strict=True)},
            "validator": {"catch": 0.9, "false_reject": 0.05},
        }
        for c in range(10)
    ]
    policies = []
    for k, chain in enumerate(CASCADES):
        steps = [{"model": names[i], "gate": True} for i in chain]
        steps[-1]["on_reject"] = "deliver"
        policies.append({"name": f"cascade-{k}", "kind": "chain", "routes": {t["name"]: steps for t in tasks}})
    return {
        "name": "benchmark workload",
        "volume": {"requests_per_month": 1e7},
        "defaults": {"retries": 0},
        "models": models,
        "tasks": tasks,
        "policies": policies,
    }


def optimize_worksheet(categories: int = 20, models: int = 12, seed: int = 0, budgets: bool = False) -> dict:
    """The ``optimize`` benchmark: ``categories`` x ``models`` over 4 providers, prices doubling every 2 models
    ($0.10-$6.40 per 1M input tokens), dearer models slower and better (pass rates drawn in [0.5, 0.99] and
    sorted), 1 % failures with one retry, a validator everywhere; with ``budgets``, a P95 budget of 20 s."""
    rng = np.random.default_rng(seed)
    catalog = [
        {
            "name": f"m{i}",
            "provider": f"p{i % 4}",
            "price_in": round(0.1 * 2 ** (i / 2), 4),
            "price_out": round(0.4 * 2 ** (i / 2), 4),
            "latency": {"ttft_s": band(0.3 + 0.1 * i, 0.5), "tpot_s": 0.005 + 0.002 * i},
            "failure_rate": 0.01,
            "timeout_share": 0.3,
            "timeout_s": 20.0,
        }
        for i in range(models)
    ]
    shares = rng.dirichlet(np.ones(categories))
    shares = np.round(shares, 6)
    shares[-1] = round(1 - shares[:-1].sum(), 6)
    tasks = []
    for c in range(categories):
        task = {
            "name": f"c{c}",
            "traffic_share": float(shares[c]),
            "tokens_in": band(float(rng.choice(IN_MEDIANS)), 0.8),
            "tokens_out": band(float(rng.choice(OUT_MEDIANS)), 0.6),
            "quality_threshold": 0.9,
            "pass_rates": {f"m{i}": float(q) for i, q in enumerate(np.sort(rng.uniform(0.5, 0.99, models)))},
            "validator": {"catch": 0.8, "false_reject": 0.05},
        }
        if budgets:
            task["latency_budget_s"] = 20
        tasks.append(task)
    return {
        "name": f"optimize benchmark ({categories} x {models})",
        "volume": {"requests_per_month": 1e7},
        "defaults": {"retries": 1},
        "models": catalog,
        "tasks": tasks,
        "policies": [],
    }
