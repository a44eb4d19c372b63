"""Checks that relate sections of a worksheet: shares, names, pass-rate coverage, chain targets, baseline.

Each list item is validated on its own first (``section``), so one broken entry does not hide the problems of
the others, and names are taken from the raw data so a broken model does not hide every reference to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from routecalc.errors import Problem, field_path
from routecalc.limits import PRICE_MAX_PER_1M, PRICE_WARN_PER_1M, short_repr
from routecalc.worksheet.names import secret_like
from routecalc.worksheet.schema import MAX_CHAIN, Worksheet, step_gated


def _items_by_name(items: list, kind: str) -> tuple[dict[str, Any], list[Problem]]:
    by_name: dict[str, Any] = {}
    problems = []
    for i, item in items:
        if item.name in by_name:
            problems.append(Problem(f"{kind}[{i}].name", f"duplicate name {item.name!r}"))
        else:
            by_name[item.name] = item
    return by_name, problems


def _raw_names(data: Mapping[str, Any], key: str) -> dict[str, None]:
    """Names of a section's entries as written (ordered), whether or not the entry is otherwise valid."""
    items = data.get(key)
    if not isinstance(items, list):
        return {}
    return {i["name"]: None for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)}


def cross_checks(
    data: Mapping[str, Any], models: list, tasks: list, policies: list, all_tasks_valid: bool
) -> list[Problem]:
    """Checks that relate sections: shares, names, pass-rate coverage, chain targets, baseline."""
    problems: list[Problem] = []
    _, p = _items_by_name(models, "models")
    problems += p
    valid_tasks, p = _items_by_name(tasks, "tasks")
    problems += p
    _, p = _items_by_name(policies, "policies")
    problems += p
    problems += _price_caps(data, models)
    # names come from the raw data, so one broken entry does not hide every reference to it
    model_names = _raw_names(data, "models")
    task_names = _raw_names(data, "tasks")
    models_listed = isinstance(data.get("models"), list)  # else the section itself is the reported problem
    tasks_listed = isinstance(data.get("tasks"), list)

    percent = data.get("share_unit") == "percent"
    if all_tasks_valid and tasks:
        total = sum(t.traffic_share for _, t in tasks)
        target = 100.0 if percent else 1.0
        if abs(total - target) > 1e-6 * target:
            unit = "%" if percent else ""
            problems.append(
                Problem(
                    "tasks[*].traffic_share",
                    f"shares sum to {total:.6g}{unit}, must sum to {target:g}{unit} (routecalc does not renormalise)",
                )
            )
    elif not percent:
        for i, t in tasks:
            if t.traffic_share > 1:
                problems.append(Problem(f"tasks[{i}].traffic_share", "a fraction above 1 (set share_unit: percent?)"))
    for i, t in tasks:
        for m in t.pass_rates:
            if models_listed and m not in model_names:
                problems.append(Problem(field_path((f"tasks[{i}]", "pass_rates", m)), f"unknown model {short_repr(m)}"))

    for i, pol in policies:
        base = f"policies[{i}]"
        for cat in task_names:
            if cat not in pol.routes:
                problems.append(Problem(f"{base}.routes", f"skips category {short_repr(cat)}"))
        if pol.final_reject == "human_review" and pol.human_review is None:
            problems.append(Problem(f"{base}.human_review", "required when final_reject is human_review"))
        for cat, steps in pol.routes.items():
            path = f"{base}.routes.{cat}"
            if cat not in task_names:
                if tasks_listed:
                    problems.append(Problem(path, f"unknown category {cat!r}"))
                continue
            task = valid_tasks.get(cat)
            if not steps:
                problems.append(Problem(path, "empty route"))
            if pol.kind == "static" and len(steps) > 1:
                problems.append(Problem(path, "a static route names one model (use cascade/fallback/chain)"))
            if len(steps) > MAX_CHAIN:
                problems.append(Problem(path, f"chain of {len(steps)} steps; at most {MAX_CHAIN}"))
            for s, step in enumerate(steps):
                spath = f"{path}[{s}]"
                if step.model not in model_names:
                    if models_listed:
                        problems.append(Problem(f"{spath}.model", f"unknown model {step.model!r}"))
                elif task is not None and step.model not in task.pass_rates:
                    problems.append(
                        Problem(
                            f"{spath}.model",
                            f"no pass rate for ({cat!r}, {step.model!r}): add tasks[..].pass_rates.{step.model}",
                        )
                    )
                if pol.kind != "chain" and (
                    step.gate is not None or step.on_reject is not None or step.on_failure is not None
                ):
                    problems.append(Problem(spath, f"gate/on_reject/on_failure need kind: chain (is {pol.kind})"))
                gated = step_gated(pol, step, s, len(steps))
                if gated and task is not None and task.validator is None:
                    problems.append(
                        Problem(f"{spath}", f"a gated step needs tasks[{cat}].validator (catch, false_reject)")
                    )
                for trig in ("on_reject", "on_failure"):
                    tgt = getattr(step, trig)
                    if isinstance(tgt, int) and not (s < tgt < len(steps)):
                        problems.append(
                            Problem(
                                f"{spath}.{trig}",
                                f"step {tgt} is not a later step of this chain (steps {s + 1}..{len(steps) - 1});"
                                " chains only go forward, so they cannot loop",
                            )
                        )
                if step.on_failure in ("deliver", "human_review"):
                    problems.append(Problem(f"{spath}.on_failure", "a failed step has no answer to deliver"))
                if step.on_reject == "human_review" and pol.human_review is None:
                    problems.append(Problem(f"{spath}.on_reject", "needs the policy's human_review cost/latency"))
                if step.on_reject is not None and not gated:
                    problems.append(Problem(f"{spath}.on_reject", "an ungated step never rejects (set gate: true)"))

    baseline = data.get("baseline")
    if isinstance(baseline, str) and policies and baseline not in {p.name for _, p in policies}:
        problems.append(Problem("baseline", f"names no policy ({short_repr(baseline)})"))
    return problems


PRICE_FIELDS = ("price_in", "price_out", "price_cache")
_MODEL_TEXT = ("name", "provider", "litellm_model")


def _amount(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.6g}"


def _per_1m(price_unit: Any) -> float:
    """Factor from the worksheet's price unit to per 1M tokens."""
    return 1000.0 if price_unit == "per_1k" else 1.0


def _price_caps(data: Mapping[str, Any], models: list) -> list[Problem]:
    """Prices above ``PRICE_MAX_PER_1M`` per 1M tokens (1 currency unit per token) are refused: no model costs
    that, and past it a request's cost can overflow to infinity, after which nothing can be compared."""
    k = _per_1m(data.get("price_unit"))
    problems = []
    for i, m in models:
        for fld in PRICE_FIELDS:
            v = getattr(m, fld)
            if v is not None and v * k > PRICE_MAX_PER_1M:
                problems.append(
                    Problem(
                        f"models[{i}].{fld}",
                        f"{_amount(v * k)} per 1M tokens; at most {PRICE_MAX_PER_1M:,.0f} (one currency unit per token): "
                        "check price_unit (per_1m / per_1k) and the number",
                    )
                )
    return problems


def worksheet_warnings(ws: Worksheet) -> list[str]:
    """Plausibility warnings for a valid worksheet: prices above ``PRICE_WARN_PER_1M`` per 1M tokens (a unit
    typo, or a model priced per request?) and text that looks like a pasted API key."""
    out = []
    k = _per_1m(ws.price_unit)
    for m in ws.models:
        for fld in PRICE_FIELDS:
            v = getattr(m, fld)
            if v is not None and v * k > PRICE_WARN_PER_1M:
                out.append(
                    f"{m.name}: {fld} is {_amount(v * k)} {ws.currency} per 1M tokens (more than {PRICE_WARN_PER_1M:,.0f}); "
                    f"is price_unit ({ws.price_unit}) right?"
                )
    # located by index, never by name: the name itself may be the key
    texts = [("name", ws.name), ("description", ws.description)]
    texts += [(f"models[{i}].{f}", getattr(m, f)) for i, m in enumerate(ws.models) for f in _MODEL_TEXT]
    texts += [(f"tasks[{i}].name", t.name) for i, t in enumerate(ws.tasks)]
    texts += [(f"policies[{i}].{f}", getattr(p, f)) for i, p in enumerate(ws.policies) for f in ("name", "description")]
    for where, text in texts:
        found = secret_like(text) if text else None
        if found:
            out.append(
                f"{where} holds something that looks like an API key or token ({found}); worksheets are shared "
                "and exported: keep keys in the environment, never in a worksheet"
            )
    return out


def section(data: Mapping[str, Any], key: str, spec: type[BaseModel]) -> tuple[list, bool]:
    """Validate each list item on its own, so cross checks can run on the valid ones."""
    items = data.get(key)
    if not isinstance(items, list):
        return [], False
    valid = []
    for i, item in enumerate(items):
        with contextlib.suppress(ValidationError):
            valid.append((i, spec.model_validate(item)))
    return valid, len(valid) == len(items)
