"""LiteLLM proxy ``config.yaml`` from an export plan: model groups, fallbacks by error kind, retries, weights.

Grouping follows MODEL.md: one group per model plus ``model_group_alias`` (``route-<category>``) when every
chain is plain and every model falls back the same way everywhere; otherwise one group per category step, and
per lane of a routed category (``route-<category>~<lane>``; the application picks the lane). A weighted split
whose arms differ only in their first model becomes one group of weighted deployments (``simple-shuffle``).
What LiteLLM cannot do (gates, tools, hedges, classifiers, length rules, 429-vs-5xx targets) goes in the header
(:mod:`routecalc.export.litellm_header`) and the warnings, never silently dropped. Never imports litellm: the
tests load the output with the real library.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import yaml

from routecalc.errors import ExportError
from routecalc.export.graph import check_fallbacks
from routecalc.export.notes import step_name, where
from routecalc.export.plan import (
    ROUTER_ERRORS,
    CategoryPlan,
    ExportPlan,
    LanePlan,
    Node,
    StepPlan,
    Target,
    route_tree,
    step_group,
)

LITELLM_DEFAULT_MAX_FALLBACKS = 5  # litellm.Router's default: longer chains are cut off silently
MASTER_KEY = "os.environ/LITELLM_MASTER_KEY"  # the proxy refuses to start without general_settings.master_key
REFUSALS_ALLOWED = 1000  # allowed_fails_policy: content-policy refusals per minute before a cooldown


@dataclass(frozen=True)
class Unit:
    """What the application addresses by one model name: one lane, or a split's arms folded into one group of
    weighted deployments (``weights`` then holds the arm weights)."""

    category: CategoryPlan
    key: str
    lanes: tuple[LanePlan, ...]
    weights: tuple[float, ...] | None
    base: str  # the group the application sends
    per_model: bool = False  # groups are the models themselves

    def group(self, s: int) -> str:
        """The group of step ``s`` (the entry is ``base``; later steps ``base~<s+1>``, or the step's model)."""
        if self.per_model:
            return str(self.lanes[0].steps[s].model)
        return self.base if s == self.lanes[0].entry else step_group(self.base, s + 1)


@dataclass(frozen=True)
class Grouping:
    """Which layout was chosen, why, the units, and the group of every (category, lane key, step)."""

    per_model: bool
    reason: str
    units: tuple[Unit, ...]
    group_of: dict[tuple[str, str, int], str]
    aliases: dict[str, str]  # route-<category> -> the group it stands for


def _generic(plan: ExportPlan, st: StepPlan) -> Target:
    """Where LiteLLM's generic ``fallbacks`` send a step's failures: the target most of its model's timeout, 5xx
    and 429 failures go to (ties: the 5xx target). LiteLLM's fallbacks belong to a group, not an error type."""
    errors = plan.model(str(st.model)).errors
    weight: dict[Target, float] = {}
    for t in ROUTER_ERRORS:
        weight[st.on_failure[t]] = weight.get(st.on_failure[t], 0.0) + errors[t]
    best = st.on_failure["5xx"]
    for target, w in weight.items():
        if w > weight[best] + 1e-12:
            best = target
    return best


def _router_target(lane: LanePlan, t: Target | None) -> int | None:
    """A target a router can send to: a later model step (not a tool)."""
    return t if isinstance(t, int) and lane.steps[t].tool is None else None


def _foldable(node: Node) -> bool:
    """A split whose arms are chains that differ only in their first model (and its retries and deadline)."""
    if node.kind != "split" or any(child.kind != "chain" for _, child in node.children):
        return False
    lanes = [child.lane for _, child in node.children]
    assert all(lane is not None for lane in lanes)
    first = lanes[0]
    assert first is not None
    models = set()
    for lane in lanes:
        assert lane is not None
        if lane.entry != 0 or len(lane.steps) != len(first.steps) or lane.steps[0].hedge is not None:
            return False
        if lane.steps[1:] != first.steps[1:]:
            return False
        models.add(lane.steps[0].model)

    def shape(st: StepPlan) -> StepPlan:
        return dataclasses.replace(
            st, model=None, retries=0, deadline_s=None if st.deadline_s is None else 0.0, latency_target_s=None
        )

    return len(models) == len(lanes) and all(shape(lane.steps[0]) == shape(first.steps[0]) for lane in lanes if lane)


def _units(c: CategoryPlan) -> list[Unit]:
    out: list[Unit] = []

    def base(key: str) -> str:
        return c.alias if not key else step_group(c.alias, key)

    def visit(node: Node) -> None:
        if node.lane is not None:
            out.append(Unit(c, node.key, (node.lane,), None, base(node.key)))
        elif _foldable(node):
            lanes = tuple(child.lane for _, child in node.children if child.lane is not None)
            weights = tuple(float(b.weight or 0.0) for b, _ in node.children)
            out.append(Unit(c, node.key, lanes, weights, base(node.key)))
        else:
            for _, child in node.children:
                visit(child)

    visit(route_tree(c))
    return out


def default_unit(c: CategoryPlan, units: list[Unit]) -> Unit:
    """The unit a request to ``route-<category>`` takes: each router's default child, down to a unit."""
    by_key = {u.key: u for u in units if u.category is c}
    node = route_tree(c)
    while node.key not in by_key:
        node = node.default[1]
    return by_key[node.key]


def _per_model(plan: ExportPlan) -> tuple[str | None, dict[str, tuple[str | None, int, str]]]:
    """Why one group per model is not possible (None if it is), and each model's (next model, retries)."""
    if not plan.plain:
        return "the policy routes inside categories or uses tools, hedges, deadlines or per-error targets", {}
    seen: dict[str, tuple[str | None, int, str]] = {}
    for c in plan.categories:
        for st in c.steps:
            t = st.on_failure["5xx"]
            key = (c.steps[t].model if isinstance(t, int) else None, st.retries)
            model = str(st.model)
            if model in seen and seen[model][:2] != key:
                prev_next, prev_retries, prev_cat = seen[model]
                if prev_next != key[0]:
                    return (
                        f"{model} falls back to {prev_next or 'nothing'} in {prev_cat} but to "
                        f"{key[0] or 'nothing'} in {c.name}"
                    ), seen
                return f"{model} has {prev_retries} retries in {prev_cat} but {key[1]} in {c.name}", seen
            seen.setdefault(model, (*key, c.name))
    aliases = {c.alias for c in plan.categories}
    if aliases & set(plan.models):
        return f"model name(s) {', '.join(sorted(aliases & set(plan.models)))} collide with category aliases", seen
    graph = {m: [n] for m, (n, _, _) in seen.items() if n is not None}
    try:
        check_fallbacks(plan.models, graph)
    except ExportError as exc:
        return f"a per-model fallback graph is not usable ({exc})", seen
    return None, seen


def choose_grouping(plan: ExportPlan) -> Grouping:
    """One group per model where the chains allow it (MODEL.md), else one group per category (lane) step."""
    conflict, _ = _per_model(plan)
    if conflict is None:
        units = []
        group_of = {}
        for c in plan.categories:
            lane = c.lanes[0]
            first = str(lane.steps[0].model)
            units.append(Unit(c, "", (lane,), None, first, per_model=True))
            for st in lane.steps:
                group_of[(c.name, "", st.index)] = str(st.model)
        reason = (
            "every model falls back to the same next model, with the same retries, in every category, so one "
            "group per model expresses every chain; route-<category> names are router_settings.model_group_alias "
            "entries. Deployments are shared by categories: rpm/tpm limits and cooldowns count per provider model, "
            "as at the provider. LiteLLM looks fallbacks up by the requested name, so each alias also has its own "
            "fallbacks entry."
        )
        aliases = {c.alias: str(c.lanes[0].steps[0].model) for c in plan.categories}
        return Grouping(True, reason, tuple(units), group_of, aliases)
    units = [u for c in plan.categories for u in _units(c)]
    group_of = {}
    for u in units:
        for lane in u.lanes:
            for s in lane.router_steps(rejects=True):
                group_of[(u.category.name, lane.key, s)] = u.group(s)
    aliases = {}
    for c in plan.categories:
        d = default_unit(c, units)
        if d.base != c.alias:
            aliases[c.alias] = d.base
    reason = (
        f"the chains differ by category ({conflict}), and LiteLLM fallbacks belong to a group, so each category "
        "step is its own group (route-<category>, route-<category>~2, ...; per lane of a routed category "
        "route-<category>~<lane>, ...). Categories do not share deployments: rpm/tpm limits and cooldowns count "
        "per group, while the provider's real limit is shared by every group using that model."
    )
    return Grouping(False, reason, tuple(units), group_of, aliases)


def check_names(plan: ExportPlan, g: Grouping) -> None:
    """Refuse any naming collision that would send one category's traffic to another's model or chain.

    In the per-step layout every (category, lane, step) has its own group (a folded split's arms share theirs by
    design). In the per-model layout no category alias is also a model group. Whatever the category names,
    ``slug``/``step_group`` make this hold; the check is what guarantees it.
    """
    aliases = {c.alias: c.name for c in plan.categories}
    if len(aliases) != len(plan.categories):
        raise ExportError("two categories share a route alias")
    if g.per_model:
        clash = set(aliases) & set(plan.models)
        if clash:
            raise ExportError(f"category aliases collide with model groups: {sorted(clash)}")
        return
    owner: dict[str, tuple[str, str, int]] = {}
    folded = {(u.category.name, lane.key): u.key for u in g.units for lane in u.lanes}
    for (cat, key, index), group in g.group_of.items():
        unit = folded[(cat, key)]
        if group in owner and owner[group][:2] != (cat, unit):
            prev = owner[group]
            raise ExportError(
                f"group name collision: {group!r} is both {prev[0]} step {prev[2]} and {cat} step {index + 1}; "
                "the router would merge them"
            )
        owner.setdefault(group, (cat, unit, index + 1))
    for alias, target in g.aliases.items():
        if alias in owner:
            raise ExportError(f"group name collision: alias {alias!r} is also a group")
        if target not in owner:
            raise ExportError(f"alias {alias!r} names unknown group {target!r}")


@dataclass(frozen=True)
class _Dep:
    model: str
    retries: int
    deadline_s: float | None
    weight: float | None


def _deployment(plan: ExportPlan, group: str, dep: _Dep, dep_id: str) -> dict[str, Any]:
    m = plan.model(dep.model)
    params: dict[str, Any] = {
        "model": m.litellm_model,
        "api_key": f"os.environ/{m.api_key_env}",
        "input_cost_per_token": m.input_cost_per_token,
        "output_cost_per_token": m.output_cost_per_token,
    }
    if m.cache_read_cost_per_token is not None:
        params["cache_read_input_token_cost"] = m.cache_read_cost_per_token
    if dep.deadline_s is not None and dep.deadline_s < m.timeout_s:
        params["timeout"] = dep.deadline_s  # the deadline: a try still running then fails and falls back
        params["stream_timeout"] = dep.deadline_s
    else:
        params["timeout"] = m.timeout_s
    if dep.retries != plan.retries:
        params["num_retries"] = dep.retries
    if dep.weight is not None:
        params["weight"] = dep.weight
    if m.rpm is not None:
        params["rpm"] = m.rpm
    if m.tpm is not None:
        params["tpm"] = m.tpm
    info: dict[str, Any] = {"id": dep_id}
    if m.context_window is not None:
        info["max_input_tokens"] = m.context_window
    info["routecalc_model"] = m.name
    return {"model_name": group, "litellm_params": params, "model_info": info}


def _append(mapping: dict[str, list[str]], key: str, value: str) -> None:
    targets = mapping.setdefault(key, [])
    if value not in targets:
        targets.append(value)


@dataclass
class _Maps:
    fallbacks: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    content: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    context: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)


def _edges(plan: ExportPlan, u: Unit, lane: LanePlan, maps: _Maps) -> None:
    """The fallbacks of one lane's router steps, by LiteLLM's three kinds; notes for what does not fit."""
    name = where(u.category, lane)
    for s in lane.router_steps(rejects=True):
        st = lane.steps[s]
        src = u.group(s)
        generic = _generic(plan, st)
        g = _router_target(lane, generic)
        if g is not None:
            _append(maps.fallbacks, src, u.group(g))
        elif isinstance(generic, int):
            maps.notes.append(f"{name}: {step_name(st)} falls back to a tool step; LiteLLM stops there")
        others = {t: st.on_failure[t] for t in ROUTER_ERRORS if st.on_failure[t] != generic}
        for t, target in others.items():
            maps.notes.append(
                f"{name}: {step_name(st)} sends {t} errors to {_text(lane, target)} but LiteLLM's fallbacks are per "
                f"group, not per error type (content policy and context window aside): they go to "
                f"{_text(lane, generic)} like its other failures"
            )
        errors = plan.model(str(st.model)).errors
        cf = st.on_failure["content_filter"]
        if errors["content_filter"] > 0 and cf != generic:
            cft = _router_target(lane, cf)
            if cft is not None:
                _append(maps.content, src, u.group(cft))
            else:
                maps.notes.append(
                    f"{name}: {step_name(st)}: a content-filter refusal goes to {_text(lane, cf)} in the estimate; "
                    f"LiteLLM has no way to stop there: it follows the generic fallbacks to {_text(lane, generic)}"
                )
        if st.on_overflow is not None:
            o = _router_target(lane, st.on_overflow)
            if o is not None:
                _append(maps.context, src, u.group(o))
            elif g is not None:
                maps.notes.append(
                    f"{name}: {step_name(st)}: a prompt longer than {st.model}'s window fails in the estimate "
                    f"(context_overflow: fail); LiteLLM's ContextWindowExceededError follows the generic fallbacks"
                )


def _text(lane: LanePlan, t: Target | None) -> str:
    return f"step {t + 1} ({lane.steps[t].label})" if isinstance(t, int) else str(t)


def build_config(plan: ExportPlan) -> tuple[dict[str, Any], Grouping, list[str]]:
    """The config dict (``model_list``, ``router_settings``, ``litellm_settings``, ``general_settings``), the
    grouping used and the notes on what the fallbacks cannot express."""
    g = choose_grouping(plan)
    check_names(plan, g)
    groups: dict[str, list[_Dep]] = {}
    deadline_groups: list[str] = []
    for u in g.units:
        for i, lane in enumerate(u.lanes):
            for s in lane.router_steps(rejects=True):
                st = lane.steps[s]
                weight = u.weights[i] if u.weights is not None and s == lane.entry else None
                dep = _Dep(str(st.model), st.retries, st.deadline_s, weight)
                group = u.group(s)
                have = groups.setdefault(group, [])
                if dep in have:
                    continue
                if have and weight is None:
                    raise ExportError(
                        f"group {group!r} would hold both {have[0].model} and {dep.model}: traffic would go to the "
                        "wrong model"
                    )
                have.append(dep)
                if st.deadline_s is not None and group not in deadline_groups:
                    deadline_groups.append(group)
    model_list: list[dict[str, Any]] = []
    for group, deps in groups.items():
        for dep in deps:
            dep_id = dep.model if g.per_model else f"{group}--{dep.model}"
            model_list.append(_deployment(plan, group, dep, dep_id))
    ids = [d["model_info"]["id"] for d in model_list]
    if len(set(ids)) != len(ids):
        raise ExportError(f"deployment ids collide: {sorted({i for i in ids if ids.count(i) > 1})}")

    maps = _Maps()
    for u in g.units:
        for lane in u.lanes:
            _edges(plan, u, lane, maps)
    for alias, target in g.aliases.items():  # LiteLLM looks fallbacks up by the requested name
        for mapping in (maps.fallbacks, maps.content, maps.context):
            if target in mapping:
                mapping[alias] = list(mapping[target])

    names = set(groups) | set(g.aliases)
    tries = check_fallbacks(names, maps.fallbacks)
    check_fallbacks(names, maps.context, what="context_window_fallbacks")
    check_fallbacks(names, maps.content, what="content_policy_fallbacks")
    kinds = (maps.fallbacks, maps.content, maps.context)
    union = {k: list(dict.fromkeys(t for m in kinds for t in m.get(k, []))) for m in kinds for k in m}
    tries = max(tries, check_fallbacks(names, union, what="fallbacks of every kind"))

    timeout = max(m.timeout_s for m in plan.models.values())
    rs: dict[str, Any] = {"num_retries": plan.retries, "timeout": timeout}
    if plan.allowed_fails is not None:
        rs["allowed_fails"] = plan.allowed_fails
    if plan.cooldown_s is not None:
        rs["cooldown_time"] = plan.cooldown_s
    rs["enable_pre_call_checks"] = True
    if any(u.weights for u in g.units):
        rs["routing_strategy"] = "simple-shuffle"  # the strategy that honours litellm_params.weight
    for key, mapping in (
        ("fallbacks", maps.fallbacks),
        ("content_policy_fallbacks", maps.content),
        ("context_window_fallbacks", maps.context),
    ):
        if mapping:
            rs[key] = [{k: v} for k, v in mapping.items()]
    if union:
        rs["max_fallbacks"] = tries - 1
    if g.aliases:
        rs["model_group_alias"] = dict(g.aliases)
    refusals = any(m.errors["content_filter"] > 0 for m in plan.models.values())
    if refusals:
        rs["retry_policy"] = {"ContentPolicyViolationErrorRetries": 0}
        if plan.allowed_fails is not None:
            rs["allowed_fails_policy"] = {"ContentPolicyViolationErrorAllowedFails": REFUSALS_ALLOWED}
    if deadline_groups:
        rs["model_group_retry_policy"] = {
            group: {"TimeoutErrorRetries": 0, "DefaultRetries": plan.retries} for group in deadline_groups
        }
    config = {
        "model_list": model_list,
        "router_settings": rs,
        "litellm_settings": {"request_timeout": timeout},
        "general_settings": {"master_key": MASTER_KEY},
    }
    return config, g, maps.notes


def render(plan: ExportPlan) -> tuple[str, dict[str, Any], list[str]]:
    """YAML text (header + config), the config dict, and the warnings; re-loads the text to check it."""
    from routecalc.export.litellm_header import header, routing_notes
    from routecalc.export.notes import step_notes

    config, g, edge_notes = build_config(plan)
    notes = step_notes(plan, "LiteLLM") + routing_notes(plan, g) + edge_notes
    warnings = list(plan.warnings)
    if plan.gated:
        warnings.append("quality gates are not enforced by LiteLLM: see the header; the application must run them")
    rs = config["router_settings"]
    over = [
        where(c, lane)
        for c in plan.categories
        for lane in c.lanes
        if len(lane.router_steps()) > LITELLM_DEFAULT_MAX_FALLBACKS + 1
    ]
    if over:
        warnings.append(f"chains longer than LiteLLM's default max_fallbacks (5) in {', '.join(over)}: set explicitly")
    shared = [
        m for m in plan.models if sum(1 for d in config["model_list"] if d["model_info"]["routecalc_model"] == m) > 1
    ]
    if shared and (any(plan.models[m].rpm or plan.models[m].tpm for m in shared)):
        warnings.append(
            "rpm/tpm are per deployment: " + ", ".join(shared) + " appear in several groups, each with the "
            "catalog's full limit; split the provider limit across groups if it is shared"
        )
    head = "\n".join(("# " + line).rstrip() for line in header(plan, g, notes, warnings))
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)
    text = head + "\n\n" + body
    reloaded = yaml.safe_load(text)
    if reloaded != config:
        raise ExportError("the LiteLLM config does not re-load to what was written (YAML round trip failed)")
    groups = {d["model_name"] for d in reloaded["model_list"]} | set(rs.get("model_group_alias", {}))
    for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        merged: dict[str, list[str]] = {}
        for entry in reloaded["router_settings"].get(key, []):
            for k, v in entry.items():
                merged.setdefault(k, []).extend(v)
        check_fallbacks(groups, merged, what=key)
    return text, config, warnings + notes
