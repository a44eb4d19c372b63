"""Portkey gateway config (``x-portkey-config`` JSON) from an export plan.

A conditional router on ``metadata.category`` picks one named target per category. Inside it the route keeps its
shape: a weighted split is a ``loadbalance`` strategy (``weight`` per target), rules and classifiers are
``conditional`` strategies on request metadata the application sets (``metadata.routecalc_input_tokens``,
``metadata.<attribute>``, ``metadata.routecalc_tier``), and each chain is a ``fallback`` strategy whose
``on_status_codes`` follow the per-error-type targets (nested where 429, 5xx, timeouts (408) and refusals (400)
go different ways). Legs carry ``override_params.model``, ``request_timeout`` (the deadline where one is set),
``retry`` and ``forward_headers``: keys come from the request's own headers, never from the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from routecalc.errors import ExportError
from routecalc.export.graph import check_chain_length
from routecalc.export.notes import no_fallback, step_notes, where
from routecalc.export.plan import CategoryPlan, ExportPlan, LanePlan, Node, StepPlan, Target, route_tree
from routecalc.export.portkey_providers import _NEEDS_MORE, auth_header, portkey_provider
from routecalc.export.portkey_walk import STATUS, divergences, step_target
from routecalc.routes import Branch, condition_text

CATEGORY_KEY = "category"
TIER_KEY = "routecalc_tier"
TOKENS_KEY = "routecalc_input_tokens"
TIMEOUT_STATUS = STATUS["timeout"]  # the gateway answers a request_timeout with 408
REFUSAL_STATUS = STATUS["content_filter"]  # a refusal (and a prompt too long for the model) comes back as 400


@dataclass
class _Build:
    """What building the config learns: legs' steps (for the walk check) and the notes."""

    notes: list[str] = field(default_factory=list)
    step_of: dict[int, int] = field(default_factory=dict)


def type_codes(plan: ExportPlan) -> dict[str, list[int]]:
    """HTTP statuses per failure type: 5xx and 429 from defaults.on_status_codes (other codes there count as
    5xx), 408 for a timeout (the gateway's own request_timeout), 400 for a content-filter refusal."""
    codes = {"timeout": [TIMEOUT_STATUS], "5xx": [], "429": [], "content_filter": [REFUSAL_STATUS]}
    for code in plan.on_status_codes:
        if code == 429:
            codes["429"].append(code)
        elif code not in (TIMEOUT_STATUS, REFUSAL_STATUS):
            codes["5xx"].append(code)
    return codes


def _types(plan: ExportPlan, st: StepPlan) -> list[str]:
    """The failure types a step's model produces (a refusal only with a content_filter share)."""
    refusals = plan.model(str(st.model)).errors["content_filter"] > 0
    return ["timeout", "5xx", "429", *(["content_filter"] if refusals else [])]


def _leg(plan: ExportPlan, st: StepPlan, b: _Build) -> dict[str, Any]:
    m = plan.model(str(st.model))
    provider = portkey_provider(m.provider)
    timeout = min(st.deadline_s, m.timeout_s) if st.deadline_s is not None else m.timeout_s
    leg: dict[str, Any] = {"provider": provider}
    if provider not in _NEEDS_MORE:  # credentials beyond one key header are added by hand (a warning says so)
        leg["forward_headers"] = [auth_header(provider)]
    leg["override_params"] = {"model": m.bare_model}
    leg["request_timeout"] = round(timeout * 1000)
    if st.retries > 0:
        codes = type_codes(plan)
        again = codes["5xx"] + codes["429"] + ([] if st.deadline_s is not None else codes["timeout"])
        leg["retry"] = {"attempts": st.retries, "on_status_codes": sorted(set(again))}
    b.step_of[id(leg)] = st.index
    return leg


def _groups(plan: ExportPlan, c: CategoryPlan, lane: LanePlan, st: StepPlan, b: _Build) -> dict[int, list[int]]:
    """Router targets of a step and the statuses that lead to each (innermost first: the most frequent)."""
    codes = type_codes(plan)
    errors = plan.model(str(st.model)).errors
    weight: dict[int, float] = {}
    out: dict[int, list[int]] = {}
    for t in _types(plan, st):
        target = step_target(st, t)
        if isinstance(target, int) and lane.steps[target].tool is None:
            out.setdefault(target, []).extend(codes[t])
            weight[target] = weight.get(target, 0.0) + errors[t]
    if st.on_overflow is not None:  # a prompt too long for the model: 400 too
        o = st.on_overflow
        cf = step_target(st, "content_filter") if errors["content_filter"] > 0 else o
        if cf != o:
            b.notes.append(
                f"{where(c, lane)}: step {st.index + 1} ({st.model}): a refusal and a prompt too long for the model "
                f"both come back as 400; the gateway sends both to {_text(lane, cf)}"
            )
        elif isinstance(o, int) and lane.steps[o].tool is None and REFUSAL_STATUS not in out.get(o, []):
            out.setdefault(o, []).append(REFUSAL_STATUS)
            weight.setdefault(o, 0.0)
    order = sorted(out, key=lambda t: (-weight[t], t))
    return {t: sorted(set(out[t])) for t in order}


def _text(lane: LanePlan, t: Target | None) -> str:
    return f"step {t + 1} ({lane.steps[t].label})" if isinstance(t, int) else str(t)


def _fallback(codes: list[int], first: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """fallback[codes]{first, then}, spliced when ``then`` is a fallback on the same codes."""
    rest = [then]
    if then.get("strategy", {}).get("mode") == "fallback" and then["strategy"].get("on_status_codes") == codes:
        rest = then["targets"]
    return {"strategy": {"mode": "fallback", "on_status_codes": codes}, "targets": [first, *rest]}


def _chain(plan: ExportPlan, c: CategoryPlan, lane: LanePlan, s: int, b: _Build, depth: int = 0) -> dict[str, Any]:
    """Step ``s`` and everything its failures lead to, as nested fallback strategies."""
    st = lane.steps[s]
    node = _leg(plan, st, b)
    if depth > len(lane.steps):
        raise ExportError(f"{where(c, lane)}: the failure targets loop")
    groups = _groups(plan, c, lane, st, b)
    for i, (target, codes) in enumerate(groups.items()):
        after = _chain(plan, c, lane, target, b, depth + 1)
        node = (
            _fallback(codes, node, after)
            if i == 0
            else {
                "strategy": {"mode": "fallback", "on_status_codes": codes},
                "targets": [node, after],
            }
        )
    return node


def _lane(plan: ExportPlan, c: CategoryPlan, lane: LanePlan, b: _Build) -> dict[str, Any]:
    entry = lane.entry
    if entry is None:
        raise ExportError(f"{where(c, lane)}: the route has no model step a router can call")
    tree = _chain(plan, c, lane, entry, b)
    types = {s: _types(plan, lane.steps[s]) for s in lane.router_steps()}
    found = divergences(lane, tree, b.step_of, types)
    if found:
        fails, expected, got = found[0]
        failing = ", then ".join(f"{lane.steps[s].model} fails with {t}" for s, t in fails.items() if t is not None)
        more = f" ({len(found)} failure combinations differ; this is the first)" if len(found) > 1 else ""
        b.notes.append(
            f"{where(c, lane)}: when {failing}, the gateway tries "
            f"{' -> '.join(str(lane.steps[s].model) for s in got)} where the estimate tries "
            f"{' -> '.join(str(lane.steps[s].model) for s in expected)}: a nested fallback hands its last status up, "
            f"and per-error-type targets are nested fallbacks{more}"
        )
    return tree


def _query(b: Branch, key: str) -> dict[str, Any]:
    if b.kind == "classifier":
        return {f"metadata.{key}": {"$eq": b.label}}
    cond = b.when
    assert cond is not None
    q: dict[str, Any] = {}
    tokens: dict[str, float] = {}
    if cond.input_tokens_gt is not None:
        tokens["$gt"] = cond.input_tokens_gt
    if cond.input_tokens_le is not None:
        tokens["$lte"] = cond.input_tokens_le
    if tokens:
        q[f"metadata.{TOKENS_KEY}"] = {k: int(v) if float(v).is_integer() else v for k, v in tokens.items()}
    if cond.attribute is not None:
        if "." in cond.attribute:
            raise ExportError(
                f"attribute {cond.attribute!r}: Portkey reads metadata.<name> as a two-part path; rename it without '.'"
            )
        q[f"metadata.{cond.attribute}"] = {"$in": list(cond.in_ or [])}
    return q


def _node(plan: ExportPlan, c: CategoryPlan, node: Node, b: _Build) -> dict[str, Any]:
    if node.lane is not None:
        return _lane(plan, c, node.lane, b)
    children = [(br, _node(plan, c, child, b)) for br, child in node.children]
    if node.kind == "split":
        return {
            "strategy": {"mode": "loadbalance"},
            "targets": [{**child, "weight": br.weight} for br, child in children],
        }
    names = [child.key.rsplit(".", 1)[-1] for _, child in node.children]
    default_branch, _ = node.default
    conditions = [
        {"query": _query(br, TIER_KEY), "then": name}
        for (br, _), name in zip(children, names, strict=True)
        if br.kind == "classifier" or br.when is not None
    ]
    return {
        "strategy": {
            "mode": "conditional",
            "conditions": conditions,
            "default": names[[br for br, _ in children].index(default_branch)],
        },
        "targets": [{"name": name, **child} for (_, child), name in zip(children, names, strict=True)],
    }


def default_category(plan: ExportPlan) -> str:
    """Where a request without (or with an unknown) ``metadata.category`` goes: the largest-traffic category."""
    return max(plan.categories, key=lambda c: c.traffic_share).alias


def build_config(plan: ExportPlan) -> tuple[dict[str, Any], list[str]]:
    """The gateway config dict and the notes on what it cannot express exactly."""
    b = _Build()
    targets = []
    conditions = []
    for c in plan.categories:
        targets.append({"name": c.alias, **_node(plan, c, route_tree(c), b)})
        conditions.append({"query": {f"metadata.{CATEGORY_KEY}": {"$eq": c.name}}, "then": c.alias})
    config = {
        "strategy": {"mode": "conditional", "conditions": conditions, "default": default_category(plan)},
        "targets": targets,
    }
    return config, b.notes


def validate(config: dict[str, Any], path: str = "config") -> None:
    """Target names unique and every ``then``/``default`` names one at its level (the gateway checks only the
    branch a request takes); fallback chains no longer than MAX_CHAIN; every level recursively."""
    targets = config.get("targets", [])
    strategy = config.get("strategy", {})
    if strategy.get("mode") == "conditional":
        names = [t.get("name") for t in targets]
        if len(set(names)) != len(names):
            raise ExportError(f"portkey: duplicate target names in {names}")
        wanted = [c["then"] for c in strategy.get("conditions", [])]
        if "default" in strategy:
            wanted.append(strategy["default"])
        for w in wanted:
            if w not in names:
                raise ExportError(f"portkey: conditional router names unknown target {w!r}")
    if strategy.get("mode") == "fallback":
        check_chain_length(f"portkey target {config.get('name', path)}", len(targets))
    for i, t in enumerate(targets):
        validate(t, f"{path}.targets[{i}]")


def _routing_notes(plan: ExportPlan) -> list[str]:
    out = []
    for c in plan.categories:
        if not c.routed:
            continue
        for lane in c.lanes:
            for br in lane.path:
                if br.kind == "classifier":
                    note = (
                        f"{c.name}: {br.classifier} chooses the route; the gateway cannot run a classifier: the "
                        f"application runs it and sets metadata.{TIER_KEY} to the predicted label"
                    )
                elif br.kind == "rule" and br.when is not None:
                    cond = br.when
                    if cond.input_tokens_gt is not None or cond.input_tokens_le is not None:
                        _add(
                            out,
                            f"{c.name}: {br.label} tests the prompt's length ({condition_text(cond)}); the gateway "
                            f"cannot count tokens: the application sets metadata.{TOKENS_KEY} to the input tokens",
                        )
                    if cond.attribute is None:
                        continue
                    note = (
                        f"{c.name}: {br.label} tests {cond.attribute}: the application sets metadata.{cond.attribute}"
                    )
                else:
                    continue
                _add(out, note)
    return out


def _add(out: list[str], note: str) -> None:
    if note not in out:
        out.append(note)


def render(plan: ExportPlan) -> tuple[str, dict[str, Any], list[str]]:
    """JSON text, the config dict and the warnings; re-loads the text to check it."""
    config, walk_notes = build_config(plan)
    validate(config)
    warnings = list(plan.warnings)
    providers = sorted({portkey_provider(m.provider) for m in plan.models.values()})
    by_header: dict[str, list[str]] = {}
    for p in providers:
        if p not in _NEEDS_MORE:
            by_header.setdefault(auth_header(p), []).append(p)
    if by_header:
        warnings.append(
            "keys: each leg forwards the request's own "
            + ", ".join(f"{h} header ({', '.join(ps)})" for h, ps in sorted(by_header.items()))
            + " to the provider; the file holds no key. With Portkey's hosted control plane, replace "
            "forward_headers by virtual_key"
        )
    for h, ps in sorted(by_header.items()):
        if len(ps) > 1:
            warnings.append(
                f"{' and '.join(ps)} both read the request's {h} header: one key would serve both; give all but one "
                "an api_key where the application attaches the config"
            )
    warnings.append(
        f"requests without metadata.{CATEGORY_KEY} (or with an unknown one) go to {default_category(plan)} "
        "(the category with the most traffic)"
    )
    if plan.gated:
        warnings.append("quality gates are not enforced by Portkey: see the json export; the application must run them")
    for p in sorted(set(providers) & _NEEDS_MORE):
        warnings.append(f"provider {p} needs more than a key (region/resource/credentials): add them by hand")
    lonely = no_fallback(plan)
    if lonely:
        warnings.append("no fallback (a provider failure fails the request): " + "; ".join(lonely))
    notes = step_notes(plan, "Portkey") + _routing_notes(plan) + walk_notes
    text = json.dumps(config, indent=2) + "\n"
    if json.loads(text) != config:
        raise ExportError("the Portkey config does not re-load to what was written")
    validate(json.loads(text))
    return text, config, warnings + notes
