"""routecalc's own policy export (JSON): the whole policy, gates included, for teams with a custom router.

The format is documented by ``routecalc/schema/policy-export.schema.json`` (``format_version`` 2). Unlike the
router configs it keeps everything the estimate assumed: every lane of a routed category with the router decisions
leading to it, per-error-type targets, deadlines, hedges, tools, gates and where a reject goes, expected
escalation, the expected metrics with the source worksheet's SHA-256, and ``notes`` on what a failure-only router
cannot do by itself.
"""

from __future__ import annotations

import json
import math
from typing import Any

from routecalc.errors import ExportError
from routecalc.export.graph import check_chain_length
from routecalc.export.notes import step_notes
from routecalc.export.plan import ExportPlan, LanePlan, StepPlan, Target
from routecalc.routes import Branch

FORMAT = "routecalc-policy-export"
FORMAT_VERSION = 2
TRIGGERS = {
    "on_failure": "provider failure after the step's retries, per error type (timeout, 5xx, 429, content_filter; "
    "a refusal is not retried); the value is a later step's index or a keyword",
    "on_overflow": "a prompt longer than the step's model's context window",
    "on_deadline": "a try still running at the step's client-side deadline is abandoned",
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
        "tool": st.tool,
        "hedge": st.hedge,
        "retries": st.retries,
        "gated": st.gated,
        "on_failure": {t: _target(v) for t, v in st.on_failure.items()},
        "on_reject": _target(st.on_reject),
        "on_overflow": _target(st.on_overflow),
        "deadline_s": st.deadline_s,
        "on_deadline": _target(st.on_deadline),
        "latency_target_s": st.latency_target_s,
    }


def _branch(b: Branch) -> dict[str, Any]:
    when = None
    if b.when is not None:
        when = b.when.model_dump(by_alias=True, exclude_none=True)
    return {
        "kind": b.kind,
        "index": b.index,
        "label": b.label,
        "weight": b.weight,
        "when": when,
        "classifier": b.classifier,
    }


def _lane(lane: LanePlan) -> dict[str, Any]:
    return {
        "key": lane.key,
        "path": [_branch(b) for b in lane.path],
        "share": lane.share,
        "steps": [_step(st) for st in lane.steps],
        "entry": lane.entry,
        "failure_path": lane.failure_path(),
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
            "errors": dict(m.errors),
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
                "route_text": c.route,
                "lanes": [_lane(lane) for lane in c.lanes],
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
            "warnings": list(plan.warnings),
            "notes": step_notes(plan, "a failure-only router"),
        }
    )


def validate(doc: dict[str, Any]) -> None:
    """Steps name known models, triggers point forward inside the lane (so no loop), chains are not too long."""
    models = set(doc["models"])
    for c in doc["categories"]:
        for lane in c["lanes"]:
            steps = lane["steps"]
            name = c["name"] + (f" [{lane['key']}]" if lane["key"] else "")
            check_chain_length(name, len(steps))
            for st in steps:
                for m in (st["model"], st["hedge"]):
                    if m is not None and m not in models:
                        raise ExportError(f"{name}: step {st['index']} names unknown model {m!r}")
                targets = [("on_failure", t) for t in st["on_failure"].values()]
                targets += [(trig, st[trig]) for trig in ("on_reject", "on_overflow", "on_deadline")]
                for trig, t in targets:
                    if isinstance(t, int) and not st["index"] < t < len(steps):
                        raise ExportError(f"{name}: step {st['index']} {trig} -> {t} is not a later step")


def render(plan: ExportPlan) -> tuple[str, dict[str, Any], list[str]]:
    """JSON text, the document and the warnings; re-loads the text to check it."""
    doc = build(plan)
    validate(doc)
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    reloaded = json.loads(text)
    if reloaded != doc:
        raise ExportError("the policy export does not re-load to what was written")
    validate(reloaded)
    return text, doc, list(doc["warnings"]) + list(doc["notes"])
