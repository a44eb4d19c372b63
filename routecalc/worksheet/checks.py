"""Checks that relate sections of a worksheet: shares, names, pass-rate coverage, chain targets, baseline.

Each list item is validated on its own first (``section``), so one broken entry does not hide the problems of
the others, and names are taken from the raw data so a broken model does not hide every reference to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from routecalc.errors import Problem
from routecalc.worksheet.schema import MAX_CHAIN, Constraints, step_gated


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
                problems.append(Problem(f"tasks[{i}].pass_rates.{m}", f"unknown model {m!r}"))
        if models_listed and t.outcomes is not None:
            o, base = t.outcomes, f"tasks[{i}].outcomes"
            refs = [(f"{base}.models[{j}]", m) for j, m in enumerate(o.models or [])]
            if o.conditional is not None:
                refs += [(f"{base}.conditional.model", o.conditional.model)]
                refs += [(f"{base}.conditional.given_failed", o.conditional.given_failed)]
            problems += [Problem(path, f"unknown model {m!r}") for path, m in refs if m not in model_names]

    for i, pol in policies:
        base = f"policies[{i}]"
        for cat in task_names:
            if cat not in pol.routes:
                problems.append(Problem(f"{base}.routes", f"skips category {cat!r}"))
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
                elif task is not None and step.model not in task.rates:
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

    problems += constraint_checks(data, tasks)

    baseline = data.get("baseline")
    if isinstance(baseline, str) and policies and baseline not in {p.name for _, p in policies}:
        problems.append(Problem("baseline", f"names no policy ({baseline!r})"))
    return problems


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


def constraint_checks(data: Mapping[str, Any], tasks: list) -> list[Problem]:
    """The constraints ``optimize`` obeys: model lists name known models, and a per-category allowed model
    needs a pass rate there and must not be forbidden worksheet-wide. Each ``constraints`` block is read on its
    own, so a broken task elsewhere does not hide these problems."""
    problems: list[Problem] = []
    model_names = _raw_names(data, "models")
    if not isinstance(data.get("models"), list):
        return problems
    raw_tasks = data.get("tasks") if isinstance(data.get("tasks"), list) else []
    listed = [("constraints", _constraints(data.get("constraints")))]
    listed += [
        (f"tasks[{i}].constraints", _constraints(t.get("constraints") if isinstance(t, dict) else None))
        for i, t in enumerate(raw_tasks)
    ]
    for base, cons in listed:
        if cons is None:
            continue
        for key in ("allowed_models", "forbidden_models"):
            for j, m in enumerate(getattr(cons, key) or []):
                if m not in model_names:
                    problems.append(Problem(f"{base}.{key}[{j}]", f"unknown model {m!r}"))
    top = listed[0][1]
    banned = set(top.forbidden_models) if top is not None else set()
    valid = dict(tasks)
    for i, (_, cons) in enumerate(listed[1:]):
        for j, m in enumerate((cons.allowed_models if cons is not None else None) or []):
            path = f"tasks[{i}].constraints.allowed_models[{j}]"
            if m in banned:
                problems.append(Problem(path, f"{m!r} is forbidden worksheet-wide (constraints.forbidden_models)"))
            elif m in model_names and i in valid and m not in valid[i].rates:
                name = valid[i].name
                problems.append(Problem(path, f"no pass rate for ({name!r}, {m!r}): add tasks[{i}].pass_rates.{m}"))
    return problems


def _constraints(raw: Any) -> Constraints | None:
    """The model lists of a constraints block, or None when absent or invalid (the schema reports its own
    errors); its other fields are left out, so a bad number does not hide a bad name."""
    if not isinstance(raw, dict):
        return None
    try:
        return Constraints.model_validate({k: raw[k] for k in ("allowed_models", "forbidden_models") if k in raw})
    except ValidationError:
        return None
