"""Big worksheets for the scale benchmark: many categories x many policies, written as YAML like a user's."""

from __future__ import annotations

import numpy as np
import yaml


def scale_worksheet(n_categories: int, n_policies: int, n_models: int = 6, seed: int = 0) -> dict:
    """A worksheet with ``n_categories`` task categories and ``n_policies`` cascade/fallback/static policies."""
    rng = np.random.default_rng(seed)
    models = [
        {
            "name": f"m{i}",
            "provider": "openai",
            "price_in": round(float(0.1 * 3**i), 4),
            "price_out": round(float(0.4 * 3**i), 4),
            "latency": {"ttft_s": {"p50": 0.3 + 0.2 * i, "p95": 1.0 + 0.5 * i}, "tpot_s": 0.005 + 0.004 * i},
            "failure_rate": 0.01,
            "timeout_share": 0.3,
            "timeout_s": 30,
        }
        for i in range(n_models)
    ]
    shares = rng.dirichlet(np.ones(n_categories))
    shares = np.round(shares, 12)
    shares[-1] = 1.0 - shares[:-1].sum()
    tasks = []
    for c in range(n_categories):
        base = rng.uniform(0.55, 0.9)
        tasks.append(
            {
                "name": f"cat-{c:05d}",
                "traffic_share": float(shares[c]),
                "tokens_in": {"p50": int(rng.integers(200, 4000)), "p95": int(rng.integers(4000, 12000))},
                "tokens_out": {"p50": int(rng.integers(20, 400)), "p95": int(rng.integers(400, 1200))},
                "quality_threshold": 0.85,
                "latency_budget_s": 30,
                "pass_rates": {m["name"]: round(float(min(0.99, base + 0.02 * i)), 3) for i, m in enumerate(models)},
                "validator": {"catch": 0.8, "false_reject": 0.05},
            }
        )
    names = [m["name"] for m in models]
    policies = []
    for p in range(n_policies):
        kind = ("static", "cascade", "fallback")[p % 3]
        routes = {}
        for t in tasks:
            first = int(rng.integers(0, n_models - 1))
            chain = [names[first], names[int(rng.integers(first + 1, n_models))]]
            routes[t["name"]] = chain[0] if kind == "static" else chain
        policies.append({"name": f"policy-{p:03d}", "kind": kind, "routes": routes})
    return {
        "name": f"scale {n_categories} x {n_policies}",
        "volume": {"requests_per_month": 5_000_000},
        "models": models,
        "tasks": tasks,
        "policies": policies,
        "baseline": "policy-000",
    }


def write(path: str, n_categories: int, n_policies: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(scale_worksheet(n_categories, n_policies), fh, sort_keys=False, width=200)
