"""routecalc's own policy export (JSON): the whole policy, gates included, for teams with a custom router.

The format is documented by ``routecalc/schema/policy-export.schema.json`` (``format_version`` 1). Unlike the
router configs it keeps everything the estimate assumed: gates and where a reject goes, expected escalation,
and the expected metrics, with the source worksheet's SHA-256.
"""

from __future__ import annotations

import json
import math
from typing import Any

from routecalc.errors import ExportError
from routecalc.export.plan import ExportPlan, StepPlan, Target, check_chain_length, check_fallbacks, inexpressible

FORMAT = "routecalc-policy-export"
FORMAT_VERSION = 1
TRIGGERS = {
    "on_failure": "provider failure after the step's retries (an HTTP status in on_status_codes, a timeout or "
    "a connection error); the value is the next step's index or a keyword",
    "on_reject": "the category's gate rejects the step's answer (gated steps only); the value is the next "
    "step's index or a keyword",
    "keywords": "fail: the request fails without an answer; deliver: deliver the rejected answer anyway; "
    "human_review: send it to human review",
}


def _target(t: Target | None) -> Any:
    return t


def _finite(obj: Any) -> Any:
    """NaN/inf -> None, so the document is strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _step(st: StepPlan) -> dict[str, Any]:
    return {
        "index": st.index,
        "model": st.model,
        "retries": st.retries,
        "gated": st.gated,
        "on_failure": _target(st.on_failure),
        "on_reject": _target(st.on_reject),
    }


def build(plan: ExportPlan) -> dict[str, Any]:
    """The export document (JSON-ready dict)."""
    src = plan.source
    models = {}
    for name, m in plan.models.items():
        models[name] = {
            "provider": m.provider,
            "litellm_model": m.litellm_model,
            "litellm_model_assumed": m.litellm_model_assumed,
            "api_key_env": m.api_key_env,
            "input_cost_per_token": m.input_cost_per_token,
            "output_cost_per_token": m.output_cost_per_token,
            "cache_read_cost_per_token": m.cache_read_cost_per_token,
            "timeout_s": m.timeout_s,
            "context_window": m.context_window,
            "rpm": m.rpm,
            "tpm": m.tpm,
        }
    categories = []
    for c in plan.categories:
        gate = None
        if c.gate is not None:
            gate = {
                "catch": c.gate.catch,
                "false_reject": c.gate.false_reject,
                "cost_per_call": c.gate.cost_per_call,
                "cost_per_1m_tokens": c.gate.cost_per_1m_tokens,
                "latency_s": c.gate.latency_s,
                "expected_escalation": c.expected["escalation"] if c.expected else None,
            }
        categories.append(
            {
                "name": c.name,
                "route": c.alias,
                "traffic_share": c.traffic_share,
                "quality_threshold": c.quality_threshold,
                "latency_budget_s": c.latency_budget_s,
                "tokens_p95": {"input": c.tokens_in_p95, "output": c.tokens_out_p95},
                "steps": [_step(st) for st in c.steps],
                "failure_path": c.failure_path(),
                "context_window_fallback": c.context_fallback,
                "gate": gate,
                "expected": dict(c.expected) if c.expected else None,
            }
        )
    return _finite(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "routecalc_version": plan.routecalc_version,
            "source": {
                "worksheet": plan.worksheet,
                "path": src.path,
                "sha256": src.sha256,
                "scenarios": [{"path": p, "sha256": h} for p, h in src.scenarios],
            },
            "policy": {
                "name": plan.policy,
                "kind": plan.kind,
                "description": plan.description,
                "final_reject": plan.final_reject,
                "human_review": (
                    {"cost": plan.human_review[0], "latency_s": plan.human_review[1]} if plan.human_review else None
                ),
            },
            "currency": plan.currency,
            "settings": {
                "retries": plan.retries,
                "backoff_s": plan.backoff_s,
                "allowed_fails": plan.allowed_fails,
                "cooldown_s": plan.cooldown_s,
                "on_status_codes": list(plan.on_status_codes),
            },
            "triggers": TRIGGERS,
            "models": models,
            "categories": categories,
            "expected": dict(plan.expected) if plan.expected else None,
            "warnings": list(plan.warnings) + inexpressible(plan, "a failure-only router"),
        }
    )


def validate(doc: dict[str, Any]) -> None:
    """Steps name known models, triggers point forward inside the chain, chains are not too long."""
    models = set(doc["models"])
    for c in doc["categories"]:
        steps = c["steps"]
        check_chain_length(c["name"], len(steps))
        edges: dict[str, list[str]] = {}
        for st in steps:
            if st["model"] not in models:
                raise ExportError(f"{c['name']}: step {st['index']} names unknown model {st['model']!r}")
            for trig in ("on_failure", "on_reject"):
                t = st[trig]
                if isinstance(t, int):
                    if not st["index"] < t < len(steps):
                        raise ExportError(f"{c['name']}: step {st['index']} {trig} -> {t} is not a later step")
                    edges.setdefault(str(st["index"]), []).append(str(t))
        check_fallbacks([str(i) for i in range(len(steps))], edges, what=f"{c['name']} steps")


def render(plan: ExportPlan) -> tuple[str, dict[str, Any], list[str]]:
    """JSON text, the document and the warnings; re-loads the text to check it."""
    doc = build(plan)
    validate(doc)
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    reloaded = json.loads(text)
    if reloaded != doc:
        raise ExportError("the policy export does not re-load to what was written")
    validate(reloaded)
    return text, doc, list(doc["warnings"])
