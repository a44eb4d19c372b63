"""Which legs the Portkey gateway tries for a request, given how each try fails, next to what the estimate assumes.

The gateway (1.15.2, ``iu`` in build/start-server.js) walks a ``fallback`` strategy's targets in order and moves
on while the status it got back is in the strategy's ``on_status_codes``; a nested strategy hands its last status
up. Per-error-type targets are nested fallbacks, so a failure deep in an inner block can reach an outer block's
next target, which the estimate does not do. :func:`divergences` finds every such case for a lane, so the export
can say so (tests/test_export_portkey.py checks this model against the real gateway).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from routecalc.export.plan import LanePlan, StepPlan, Target

STATUS = {"timeout": 408, "5xx": 503, "429": 429, "content_filter": 400}  # what a leg answers, per failure type
MAX_CASES = 4096  # failure combinations enumerated per lane; beyond, one failure type per request


def step_target(st: StepPlan, error_type: str) -> Target | None:
    """Where the estimate sends a try that failed with ``error_type`` (a deadline step's timeout is its deadline)."""
    if error_type == "timeout" and st.deadline_s is not None:
        return st.on_deadline
    return st.on_failure[error_type]


def gateway_walk(node: Mapping[str, Any], status_of: Callable[[Mapping[str, Any]], int]) -> tuple[int, list[Any]]:
    """(final status, legs tried in order) of a fallback tree whose legs answer ``status_of(leg)``."""
    if "strategy" not in node:
        return status_of(node), [node]
    codes = node["strategy"].get("on_status_codes")
    status, tried = 0, []
    for target in node["targets"]:
        status, legs = gateway_walk(target, status_of)
        tried += legs
        if (codes is not None and status not in codes) or (codes is None and status == 200):
            break
    return status, tried


def estimate_walk(lane: LanePlan, fails: Mapping[int, str | None]) -> list[int]:
    """Router steps the estimate tries when step ``s`` fails with ``fails[s]`` (None: it answers)."""
    s: Target | None = lane.entry
    seq: list[int] = []
    while isinstance(s, int) and lane.steps[s].tool is None and s not in seq:
        seq.append(s)
        t = fails.get(s)
        if t is None:
            break
        s = step_target(lane.steps[s], t)
    return seq


def divergences(
    lane: LanePlan, tree: Mapping[str, Any], step_of: Mapping[int, int], types: Mapping[int, list[str]]
) -> list[tuple[dict[int, str | None], list[int], list[int]]]:
    """Every failure combination where the gateway's walk differs from the estimate's: (fails, estimate, gateway).

    ``step_of`` maps ``id(leg)`` to its step; ``types[s]`` are the failure types step ``s`` can produce.
    """
    steps = lane.router_steps()
    options = [[None, *types[s]] for s in steps]
    n_cases = 1
    for o in options:
        n_cases *= len(o)
    if n_cases <= MAX_CASES:
        cases = [dict(zip(steps, combo, strict=True)) for combo in itertools.product(*options)]
    else:
        all_types = sorted({t for s in steps for t in types[s]})
        cases = [{s: t if t in types[s] else "5xx" for s in steps} for t in all_types]
    out = []
    for fails in cases:
        expected = estimate_walk(lane, fails)

        def status(leg: Mapping[str, Any], fails: dict[int, str | None] = fails) -> int:
            t = fails.get(step_of[id(leg)])
            return 200 if t is None else STATUS[t]

        got = [step_of[id(leg)] for leg in gateway_walk(tree, status)[1]]
        if got != expected:
            out.append((fails, expected, got))
    return out
