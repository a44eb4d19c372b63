"""Checks that relate sections of a worksheet: shares, names, pass-rate coverage, chain targets, baseline.

Each list item is validated on its own first (``section``), so one broken entry does not hide the problems of
the others, and names are taken from the raw data so a broken model does not hide every reference to it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from routecalc.errors import Problem, field_path
from routecalc.limits import PRICE_MAX_PER_1M, PRICE_WARN_PER_1M, short_repr
from routecalc.worksheet.names import secret_like
from routecalc.worksheet.pricing import price_values
from routecalc.worksheet.schema import (
    MAX_CHAIN,
    ClassifierSpec,
    Constraints,
    PolicySpec,
    Router,
    StepSpec,
    TaskSpec,
    Worksheet,
    step_gated,
)


def _items_by_name(items: list, kind: str) -> tuple[dict[str, Any], list[Problem]]:
    by_name: dict[str, Any] = {}
    problems = []
    for i, item in items:
        if item.name in by_name:
            problems.append(Problem(f"{kind}[{i}].name", f"duplicate name {short_repr(item.name)}"))
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
    data: Mapping[str, Any], models: list, tasks: list, policies: list, classifiers: list | None = None
) -> list[Problem]:
    """Checks that relate sections: shares, names, pass-rate coverage, chain targets, baseline.

    ``models``, ``tasks``, ``policies``, ``classifiers``: the valid items of each section as ``(index, item)``
    (``section``); classifiers are read from ``data`` when not given."""
    if classifiers is None:
        classifiers = section(data, "classifiers", ClassifierSpec)[0]
    problems: list[Problem] = []
    _, p = _items_by_name(models, "models")
    problems += p
    problems += _eval_names(models)
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
    shares = _raw_shares(data)
    if shares:  # every share is a number >= 0, even if its task has other problems: check the sum now
        total = sum(shares)
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
    problems += _price_references(data, model_names if models_listed else None)
    for i, t in tasks:
        for m in t.pass_rates:
            if models_listed and m not in model_names:
                problems.append(Problem(field_path((f"tasks[{i}]", "pass_rates", m)), f"unknown model {short_repr(m)}"))
        if models_listed and t.outcomes is not None:
            o, base = t.outcomes, f"tasks[{i}].outcomes"
            refs = [(f"{base}.models[{j}]", m) for j, m in enumerate(o.models or [])]
            if o.conditional is not None:
                refs += [(f"{base}.conditional.model", o.conditional.model)]
                refs += [(f"{base}.conditional.given_failed", o.conditional.given_failed)]
            problems += [Problem(path, f"unknown model {short_repr(m)}") for path, m in refs if m not in model_names]

    known = _Known(
        models=model_names if models_listed else None,
        tools=_raw_names(data, "tools"),
        classifiers={c.name: c for _, c in classifiers},
        rates={name: t.rates for name, t in valid_tasks.items()},
    )
    for i, t in tasks:
        for tool in t.tool_hit_rates:
            if tool not in known.tools:
                problems.append(Problem(f"tasks[{i}].tool_hit_rates.{tool}", f"unknown tool {short_repr(tool)}"))
        for tier, spec in (t.tiers or {}).items():
            for m in spec.pass_rates:
                if models_listed and m not in model_names:
                    problems.append(
                        Problem(f"tasks[{i}].tiers.{tier}.pass_rates.{m}", f"unknown model {short_repr(m)}")
                    )
    for j, clf in classifiers:
        if clf.model is not None and models_listed and clf.model not in model_names:
            problems.append(Problem(f"classifiers[{j}].model", f"unknown model {short_repr(clf.model)}"))
    for i, pol in policies:
        base = f"policies[{i}]"
        for cat in task_names:
            if cat not in pol.routes:
                problems.append(Problem(f"{base}.routes", f"skips category {short_repr(cat)}"))
        if pol.final_reject == "human_review" and pol.human_review is None:
            problems.append(Problem(f"{base}.human_review", "required when final_reject is human_review"))
        for cat, route in pol.routes.items():
            path = f"{base}.routes.{cat}"
            if cat not in task_names:
                if tasks_listed:
                    problems.append(Problem(path, f"unknown category {short_repr(cat)}"))
                continue
            problems += _route_problems(route, path, pol, cat, valid_tasks.get(cat), known, depth=0)

    problems += constraint_checks(data, tasks)

    baseline = data.get("baseline")
    if isinstance(baseline, str) and policies and baseline not in {p.name for _, p in policies}:
        problems.append(Problem("baseline", f"names no policy ({short_repr(baseline)})"))
    return problems


def _raw_shares(data: Mapping[str, Any]) -> list[float] | None:
    """Every task's ``traffic_share`` as written, when each is a finite number >= 0 (else None: the bad one is
    reported where it is, and a sum would only repeat it)."""
    items = data.get("tasks")
    if not isinstance(items, list) or not items:
        return None
    out = []
    for item in items:
        v = item.get("traffic_share") if isinstance(item, dict) else None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            return None
        out.append(float(v))
    return out


def _eval_names(models: list) -> list[Problem]:
    """Each eval-file name (``eval_name``, else the model's own name) may stand for one catalog model only."""
    owner: dict[str, str] = {}
    problems = []
    for i, m in models:
        key = m.eval_name if m.eval_name is not None else m.name
        if key in owner and owner[key] != m.name:
            problems.append(
                Problem(
                    f"models[{i}].eval_name",
                    f"eval name {short_repr(key)} already stands for model {short_repr(owner[key])}",
                )
            )
        owner.setdefault(key, m.name)
    return problems


def _price_references(data: Mapping[str, Any], model_names: Mapping[str, None] | None) -> list[Problem]:
    """``discounts`` name providers of the catalog; ``reasoning_ratio`` and ``prices_from.models`` name models.
    Read from the raw data, so a broken model or task does not hide these problems."""
    problems = []
    if model_names is None:
        return problems
    discounts = data.get("discounts")
    raw_models = [m for m in data.get("models", []) if isinstance(m, dict)]
    providers = sorted({m["provider"] for m in raw_models if isinstance(m.get("provider"), str)})
    for name in discounts if isinstance(discounts, dict) else []:
        if name not in providers:
            problems.append(
                Problem(
                    field_path(("discounts", name)),
                    f"no model has provider {short_repr(name)} (providers: {', '.join(providers)})",
                )
            )
    tasks = data.get("tasks")
    for i, t in enumerate(tasks if isinstance(tasks, list) else []):
        ratios = t.get("reasoning_ratio") if isinstance(t, dict) else None
        for m in ratios if isinstance(ratios, dict) else []:
            if m not in model_names:
                problems.append(
                    Problem(field_path((f"tasks[{i}]", "reasoning_ratio", m)), f"unknown model {short_repr(m)}")
                )
    source = data.get("prices_from")
    listed = source.get("models") if isinstance(source, dict) else None
    for j, m in enumerate(listed if isinstance(listed, list) else []):
        if isinstance(m, str) and m not in model_names:
            problems.append(Problem(f"prices_from.models[{j}]", f"unknown model {short_repr(m)}"))
    return problems


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
        for fld, v in price_values(m):
            if v * k > PRICE_MAX_PER_1M:
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
        for fld, v in price_values(m):
            if v * k > PRICE_WARN_PER_1M:
                out.append(
                    f"{m.name}: {fld} is {_amount(v * k)} {ws.currency} per 1M tokens (more than {PRICE_WARN_PER_1M:,.0f}); "
                    f"is price_unit ({ws.price_unit}) right?"
                )
    out += cache_price_warnings(ws)
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


def cache_price_warnings(ws: Worksheet) -> list[str]:
    """A category with a ``cached_share`` whose models (those with a pass rate there) have no ``price_cache``:
    their cached input is billed at ``price_in``, so the share changes nothing for them (is a price missing?)."""
    no_cache = {m.name for m in ws.models if m.price_cache is None}
    out = []
    for i, t in enumerate(ws.tasks):
        if not t.cached_share:
            continue
        missing = [m for m in t.pass_rates if m in no_cache]
        if missing:
            out.append(
                f"tasks[{i}] ({t.name}): cached_share {t.cached_share:g}, but {', '.join(missing)} "
                f"{'has' if len(missing) == 1 else 'have'} no price_cache, so cached input is billed at price_in "
                "there (no discount). Give models[].price_cache (routecalc prices update fills it from the price map)."
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


@dataclass(frozen=True)
class _Known:
    """Names a route may refer to (``models`` None: the catalog itself is broken, do not report each use)."""

    models: Mapping[str, None] | None
    tools: Mapping[str, None]
    classifiers: Mapping[str, ClassifierSpec]
    rates: Mapping[str, Mapping[str, float]]  # valid task name -> its pass rates (TaskSpec.rates), computed once


MAX_ROUTER_DEPTH = 4  # routers inside routers: deeper is a typo more often than a design


def _route_problems(
    route: list[StepSpec] | Router,
    path: str,
    pol: PolicySpec,
    cat: str,
    task: TaskSpec | None,
    known: _Known,
    depth: int,
) -> list[Problem]:
    """Problems of one route: a chain's steps, or a router and every route under it."""
    if isinstance(route, list):
        return _chain_problems(route, path, pol, cat, task, known)
    if depth >= MAX_ROUTER_DEPTH:
        return [Problem(path, f"routers nested more than {MAX_ROUTER_DEPTH} deep")]
    out: list[Problem] = []
    if route.split is not None:
        for a, arm in enumerate(route.split):
            out += _route_problems(arm.route, f"{path}.split[{a}].route", pol, cat, task, known, depth + 1)
    elif route.rules is not None:
        attributes = (task.attributes or {}) if task is not None else None
        for r, rule in enumerate(route.rules):
            cond = rule.when
            if cond is not None and cond.attribute is not None and attributes is not None:
                values = attributes.get(cond.attribute)
                if values is None:
                    out.append(
                        Problem(
                            f"{path}.rules[{r}].when.attribute",
                            f"{short_repr(cat)} has no attribute {short_repr(cond.attribute)}",
                        )
                    )
                else:
                    out += [
                        Problem(f"{path}.rules[{r}].when.in", f"{cond.attribute} has no value {short_repr(v)}")
                        for v in cond.in_ or []
                        if v not in values
                    ]
            out += _route_problems(rule.route, f"{path}.rules[{r}].route", pol, cat, task, known, depth + 1)
    else:
        clf = known.classifiers.get(route.classifier or "")
        if clf is None:
            out.append(Problem(f"{path}.classifier", f"unknown classifier {short_repr(route.classifier)}"))
        else:
            labels = set(clf.labels)
            if set(route.routes or {}) != labels:
                out.append(
                    Problem(f"{path}.routes", f"give one route per label of {clf.name}: {', '.join(clf.labels)}")
                )
            if task is not None and set(task.tiers or {}) != labels:
                out.append(
                    Problem(
                        path,
                        f"classifier {clf.name} predicts {', '.join(clf.labels)}: give tasks[{cat}].tiers "
                        "with those labels (their shares and pass rates)",
                    )
                )
        for label, sub in (route.routes or {}).items():
            out += _route_problems(sub, f"{path}.routes.{label}", pol, cat, task, known, depth + 1)
    return out


def _chain_problems(
    steps: list[StepSpec], path: str, pol: PolicySpec, cat: str, task: TaskSpec | None, known: _Known
) -> list[Problem]:
    problems: list[Problem] = []
    if not steps:
        problems.append(Problem(path, "empty route"))
    if pol.kind == "static" and len(steps) > 1:
        problems.append(Problem(path, "a static route names one model (use cascade/fallback/chain)"))
    if len(steps) > MAX_CHAIN:
        problems.append(Problem(path, f"chain of {len(steps)} steps; at most {MAX_CHAIN}"))
    rates = known.rates.get(cat) if task is not None else None
    n = len(steps)
    chain = pol.kind == "chain"
    for s, step in enumerate(steps):
        spath = f"{path}[{s}]"
        for field, name in [("model", step.model), *(("hedge", m) for m in step.hedge or [])]:
            if name is None:
                continue
            if known.models is not None and name not in known.models:
                problems.append(Problem(f"{spath}.{field}", f"unknown model {short_repr(name)}"))
            elif rates is not None and known.models is not None and name not in rates:
                problems.append(
                    Problem(
                        f"{spath}.{field}",
                        f"no pass rate for ({short_repr(cat)}, {short_repr(name)}): add tasks[..].pass_rates.{name}",
                    )
                )
        if step.bare:  # a model and nothing that can be misplaced (most steps): only a gate without a validator is left
            if task is not None and task.validator is None and step_gated(pol, step, s, n):
                problems.append(Problem(spath, f"a gated step needs tasks[{cat}].validator (catch, false_reject)"))
            continue
        if step.tool is not None:
            if step.tool not in known.tools:
                problems.append(Problem(f"{spath}.tool", f"unknown tool {short_repr(step.tool)}"))
            elif task is not None and step.tool not in task.tool_hit_rates:
                problems.append(
                    Problem(
                        f"{spath}.tool",
                        f"how often does {step.tool} answer {short_repr(cat)}? add tasks[..].tool_hit_rates",
                    )
                )
            if step.gate is not None or step.on_reject is not None:
                problems.append(Problem(spath, "a tool step decides hit or miss itself: no gate/on_reject"))
        if not chain:
            used = [k for k in _CHAIN_ONLY if getattr(step, k) is not None]
            if step.tool is not None:
                used = [k for k in used if k not in ("gate", "on_reject")]
            if used:
                problems.append(Problem(spath, f"{'/'.join(used)} need kind: chain (is {pol.kind})"))
        if step.hedge is not None and step.retries:
            problems.append(Problem(f"{spath}.retries", "hedged models are not retried (the other one is the retry)"))
        if step.hedge is not None and (step.gate or step.deadline_s is not None or isinstance(step.on_failure, dict)):
            problems.append(
                Problem(
                    spath, "a hedged step takes no gate, deadline or per-error targets (put them on a step after it)"
                )
            )
        if step.deadline_s == "budget" and task is not None and task.latency_budget_s is None:
            problems.append(Problem(f"{spath}.deadline_s", f"'budget' needs tasks[{cat}].latency_budget_s"))
        if step.on_deadline is not None and step.deadline_s is None:
            problems.append(Problem(f"{spath}.on_deadline", "needs deadline_s"))
        gated = step_gated(pol, step, s, n)
        if gated and task is not None and task.validator is None:
            problems.append(Problem(f"{spath}", f"a gated step needs tasks[{cat}].validator (catch, false_reject)"))
        if step.on_reject is None and step.on_deadline is None and step.on_failure is None:
            continue  # no targets to check (the checks below all need one)
        targets = [("on_reject", step.on_reject), ("on_deadline", step.on_deadline)]
        if isinstance(step.on_failure, dict):
            targets += [(f"on_failure.{t}", v) for t, v in step.on_failure.items()]
        else:
            targets.append(("on_failure", step.on_failure))
        for trig, tgt in targets:
            if isinstance(tgt, int) and not (s < tgt < n):
                problems.append(
                    Problem(
                        f"{spath}.{trig}",
                        f"step {tgt} is not a later step of this chain (steps {s + 1}..{n - 1});"
                        " chains only go forward, so they cannot loop",
                    )
                )
            if not trig.startswith("on_reject") and tgt in ("deliver", "human_review"):
                problems.append(Problem(f"{spath}.{trig}", "a failed step has no answer to deliver"))
        if step.on_reject == "human_review" and pol.human_review is None:
            problems.append(Problem(f"{spath}.on_reject", "needs the policy's human_review cost/latency"))
        if step.on_reject is not None and not gated:
            problems.append(Problem(f"{spath}.on_reject", "an ungated step never rejects (set gate: true)"))
    return problems


_CHAIN_ONLY = ("gate", "on_reject", "on_failure", "hedge", "deadline_s", "on_deadline", "latency_target_s")


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
                    problems.append(Problem(f"{base}.{key}[{j}]", f"unknown model {short_repr(m)}"))
    top = listed[0][1]
    banned = set(top.forbidden_models) if top is not None else set()
    valid = dict(tasks)
    for i, (_, cons) in enumerate(listed[1:]):
        for j, m in enumerate((cons.allowed_models if cons is not None else None) or []):
            path = f"tasks[{i}].constraints.allowed_models[{j}]"
            if m in banned:
                problems.append(
                    Problem(path, f"{short_repr(m)} is forbidden worksheet-wide (constraints.forbidden_models)")
                )
            elif m in model_names and i in valid and m not in valid[i].rates:
                name = valid[i].name
                problems.append(
                    Problem(path, f"no pass rate for ({name!r}, {short_repr(m)}): add tasks[{i}].pass_rates.{m}")
                )
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
