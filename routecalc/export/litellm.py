"""LiteLLM proxy ``config.yaml`` from an export plan: model groups, fallbacks, retries, breaker, custom prices.

Grouping follows MODEL.md: one group per model plus ``model_group_alias`` (``route-<category>``) when every
model falls back the same way in every category; otherwise one group per category step. LiteLLM cannot run a
quality gate, so gates go in the header comment (and in the ``json`` export), never silently dropped.
Never imports litellm: the tests load the output with the real library.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from routecalc.errors import ExportError
from routecalc.export.plan import (
    CategoryPlan,
    ExportPlan,
    ModelPlan,
    check_fallbacks,
    inexpressible,
    pct,
    step_group,
)

LITELLM_DEFAULT_MAX_FALLBACKS = 5  # litellm.Router's default: longer chains are cut off silently


@dataclass(frozen=True)
class Grouping:
    """Which layout was chosen, why, and the group of every (category, step)."""

    per_model: bool
    reason: str
    group_of: dict[tuple[str, int], str]  # (category, step index) -> group
    ctx_group_of: dict[str, str]  # category -> group of its context-window fallback model


def _next_model(c: CategoryPlan, i: int) -> str | None:
    t = c.steps[i].on_failure
    return c.steps[t].model if isinstance(t, int) else None


def choose_grouping(plan: ExportPlan) -> Grouping:
    """One group per model where the chains allow it (MODEL.md), else one group per category step."""
    seen: dict[str, tuple[str | None, int, str]] = {}
    conflict = None
    for c in plan.categories:
        for st in c.steps:
            key = (_next_model(c, st.index), st.retries)
            if st.model in seen and seen[st.model][:2] != key:
                prev_next, prev_retries, prev_cat = seen[st.model]
                if prev_next != key[0]:
                    conflict = (
                        f"{st.model} falls back to {prev_next or 'nothing'} in {prev_cat} but to "
                        f"{key[0] or 'nothing'} in {c.name}"
                    )
                else:
                    conflict = f"{st.model} has {prev_retries} retries in {prev_cat} but {key[1]} in {c.name}"
                break
            seen.setdefault(st.model, (*key, c.name))
        if conflict:
            break
    aliases = {c.alias for c in plan.categories}
    if conflict is None and aliases & set(plan.models):
        conflict = f"model name(s) {', '.join(sorted(aliases & set(plan.models)))} collide with category aliases"
    if conflict is None:
        graph = {m: [n] for m, (n, _, _) in seen.items() if n is not None}
        try:
            check_fallbacks(plan.models, graph)
        except ExportError as exc:
            conflict = f"a per-model fallback graph is not usable ({exc})"
    if conflict is None:
        group_of = {(c.name, st.index): st.model for c in plan.categories for st in c.steps}
        ctx = {c.name: c.context_fallback for c in plan.categories if c.context_fallback}
        reason = (
            "every model falls back to the same next model, with the same retries, in every category, so one "
            "group per model expresses every chain; route-<category> names are router_settings.model_group_alias "
            "entries. Deployments are shared by categories: rpm/tpm limits and cooldowns count per provider model, "
            "as at the provider. LiteLLM looks fallbacks up by the requested name, so each alias also has its own "
            "fallbacks entry."
        )
        return Grouping(True, reason, group_of, ctx)
    group_of = {}
    ctx_group_of = {}
    for c in plan.categories:
        for st in c.steps:
            group_of[(c.name, st.index)] = c.alias if st.index == 0 else step_group(c.alias, st.index + 1)
        if c.context_fallback:
            later = [st.index for st in c.steps[1:] if st.model == c.context_fallback]
            ctx_group_of[c.name] = group_of[(c.name, later[0])] if later else step_group(c.alias, "ctx")
    reason = (
        f"the chains differ by category ({conflict}), and LiteLLM fallbacks belong to a group, so each category "
        "step is its own group (route-<category>, route-<category>~2, ...). Categories do not share deployments: "
        "rpm/tpm limits and cooldowns count per group, while the provider's real limit is shared by every group "
        "using that model."
    )
    return Grouping(False, reason, group_of, ctx_group_of)


def check_names(plan: ExportPlan, g: Grouping) -> None:
    """Refuse any naming collision that would send one category's traffic to another's model or chain.

    In the per-step layout every (category, step) has its own group; a context-window group is new or one of the
    same category's later steps. In the per-model layout no category alias is also a model group. Whatever the
    category names, ``slug``/``step_group`` make this hold; the check is what guarantees it.
    """
    aliases = {c.alias: c.name for c in plan.categories}
    if len(aliases) != len(plan.categories):
        raise ExportError("two categories share a route alias")
    if g.per_model:
        clash = set(aliases) & set(plan.models)
        if clash:
            raise ExportError(f"category aliases collide with model groups: {sorted(clash)}")
        return
    owner: dict[str, tuple[str, int | str]] = {}
    for (cat, index), group in g.group_of.items():
        if group in owner:
            raise ExportError(
                f"group name collision: {group!r} is both {owner[group][0]} step {owner[group][1]} and {cat} step "
                f"{index + 1}; the router would merge them"
            )
        owner[group] = (cat, index + 1)
    for cat, group in g.ctx_group_of.items():
        if group in owner and owner[group][0] != cat:
            raise ExportError(
                f"group name collision: {cat}'s context-window group {group!r} belongs to {owner[group][0]}"
            )


def _add_group(groups: dict[str, tuple[str, int]], group: str, model: str, retries: int) -> None:
    """Register a group's deployment; a group name reached with a different model is refused, never merged."""
    seen = groups.setdefault(group, (model, retries))
    if seen[0] != model:
        raise ExportError(f"group {group!r} would hold both {seen[0]} and {model}: traffic would go to the wrong model")


def _deployment(plan: ExportPlan, group: str, m: ModelPlan, dep_id: str, retries: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": m.litellm_model,
        "api_key": f"os.environ/{m.api_key_env}",
        "input_cost_per_token": m.input_cost_per_token,
        "output_cost_per_token": m.output_cost_per_token,
    }
    if m.cache_read_cost_per_token is not None:
        params["cache_read_input_token_cost"] = m.cache_read_cost_per_token
    params["timeout"] = m.timeout_s
    if retries != plan.retries:
        params["num_retries"] = retries
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


def build_config(plan: ExportPlan) -> tuple[dict[str, Any], Grouping]:
    """The config dict (``model_list``, ``router_settings``, ``litellm_settings``) and the grouping used."""
    g = choose_grouping(plan)
    check_names(plan, g)
    model_list: list[dict[str, Any]] = []
    groups: dict[str, tuple[str, int]] = {}  # group -> (model, retries)
    for c in plan.categories:
        for st in c.steps:
            _add_group(groups, g.group_of[(c.name, st.index)], st.model, st.retries)
        if c.name in g.ctx_group_of:
            _add_group(groups, g.ctx_group_of[c.name], str(c.context_fallback), plan.retries)
    for group, (model, retries) in groups.items():
        dep_id = model if g.per_model else f"{group}--{model}"
        model_list.append(_deployment(plan, group, plan.model(model), dep_id, retries))
    ids = [d["model_info"]["id"] for d in model_list]
    if len(set(ids)) != len(ids):
        raise ExportError(f"deployment ids collide: {sorted({i for i in ids if ids.count(i) > 1})}")

    fallbacks: dict[str, list[str]] = {}
    ctx: dict[str, list[str]] = {}
    aliases: dict[str, str] = {}
    for c in plan.categories:
        first = g.group_of[(c.name, 0)]
        if g.per_model:
            aliases[c.alias] = first
        for st in c.steps:
            if isinstance(st.on_failure, int):
                _append(fallbacks, g.group_of[(c.name, st.index)], g.group_of[(c.name, st.on_failure)])
        if c.name in g.ctx_group_of:
            _append(ctx, first, g.ctx_group_of[c.name])
    if g.per_model:  # an alias needs its own entries: LiteLLM looks fallbacks up by the requested name
        for alias, first in aliases.items():
            if first in fallbacks:
                fallbacks[alias] = list(fallbacks[first])
            if first in ctx:
                ctx[alias] = list(ctx[first])

    names = set(groups) | set(aliases)
    tries = check_fallbacks(names, fallbacks)
    check_fallbacks(names, ctx, what="context_window_fallbacks")
    union = {k: list(dict.fromkeys(fallbacks.get(k, []) + ctx.get(k, []))) for k in set(fallbacks) | set(ctx)}
    tries = max(tries, check_fallbacks(names, union, what="fallbacks + context_window_fallbacks"))

    timeout = max(m.timeout_s for m in plan.models.values())
    rs: dict[str, Any] = {"num_retries": plan.retries, "timeout": timeout}
    if plan.allowed_fails is not None:
        rs["allowed_fails"] = plan.allowed_fails
    if plan.cooldown_s is not None:
        rs["cooldown_time"] = plan.cooldown_s
    rs["enable_pre_call_checks"] = True
    if fallbacks:
        rs["fallbacks"] = [{k: v} for k, v in fallbacks.items()]
    if ctx:
        rs["context_window_fallbacks"] = [{k: v} for k, v in ctx.items()]
    if union:
        rs["max_fallbacks"] = tries - 1
    if aliases:
        rs["model_group_alias"] = aliases
    config = {"model_list": model_list, "router_settings": rs, "litellm_settings": {"request_timeout": timeout}}
    return config, g


def _money(x: float, currency: str) -> str:
    return f"{x:,.2f} {currency}"


def header(plan: ExportPlan, g: Grouping, warnings: Iterable[str]) -> list[str]:
    """Comment lines (without ``#``) stating provenance, expected metrics, grouping and what LiteLLM won't do."""
    src = plan.source
    lines = [
        f"LiteLLM proxy config generated by routecalc {plan.routecalc_version} — do not edit by hand, re-export.",
        f"Worksheet: {plan.worksheet} ({src.path or 'in memory'})",
        f"  sha256 {src.sha256}",
    ]
    for p, h in src.scenarios:
        lines += [f"Scenario overlay: {p}", f"  sha256 {h}"]
    lines += _wrap(
        f"Policy: {plan.policy} ({plan.kind})" + (f" — {plan.description}" if plan.description else ""), "", "  "
    )
    e = plan.expected
    if e is not None:
        lines += _wrap(
            f"Expected (routecalc estimate, {e['samples']:,} MC samples, seed {e['seed']}): "
            f"{_money(e['monthly_cost'], plan.currency)}/month at {e['requests_per_month']:,.0f} requests, "
            f"quality {pct(e['quality'])}, P95 {e['p95_s']:.2f} s, escalation {pct(e['escalation'])}, "
            f"fallback {pct(e['fallback'])}" + ("" if e["meets_targets"] else " — DOES NOT meet every target"),
            "",
            "  ",
        )
    else:
        lines.append("Expected metrics: not computed (exported without a comparison; run `routecalc export`).")
    lines += ["", "Application: send model=route-<category>:"]
    lines += [f"  {c.alias}  ({c.name}, {pct(c.traffic_share)} of traffic)" for c in plan.categories]
    lines += ["", "Grouping: " + ("one group per model." if g.per_model else "one group per category step.")]
    lines += _wrap("Why: " + g.reason, "  ", "  ")
    lines.append("")
    lines += _wrap(
        "Retries and breaker: num_retries is the worksheet's retries (per deployment where a step overrides it); "
        "allowed_fails/cooldown_time come from defaults. LiteLLM waits between retries by its own backoff, "
        f"not backoff_s ({plan.backoff_s:g} s), and falls back on any error after retries "
        f"(defaults.on_status_codes {list(plan.on_status_codes)} applies to Portkey only).",
        "",
    )
    lines += _wrap(
        "Prices: input/output_cost_per_token (and cache_read_input_token_cost) are the worksheet's, per token, "
        f"in {plan.currency}, so LiteLLM's spend tracking matches the estimate. api_key values are "
        "os.environ/<PROVIDER>_API_KEY references, never keys.",
        "",
    )
    gated = [c for c in plan.categories if c.gate is not None]
    if gated:
        lines.append("")
        lines += _wrap(
            "NOT ENFORCED BY THIS FILE — quality gates. LiteLLM falls back only on errors; it never judges an "
            "answer. The estimate assumes your application runs each validator and, on reject, calls the next "
            "step's group itself:",
            "",
        )
        for c in gated:
            gate = c.gate
            assert gate is not None
            esc = c.expected["escalation"] if c.expected else None
            lines += _wrap(
                f"{c.name}: validator catch {pct(gate.catch)}, false reject {pct(gate.false_reject)}; "
                f"quality threshold {pct(c.quality_threshold)}; expected escalation "
                + (pct(esc) if esc is not None else "n/a (no comparison)"),
                "  ",
                "    ",
            )
            for st in c.steps:
                if not st.gated:
                    continue
                grp = g.group_of[(c.name, st.index)]
                tgt = st.on_reject
                then = f"call {g.group_of[(c.name, tgt)]}" if isinstance(tgt, int) else str(tgt)
                where = st.model if grp == st.model else f"{st.model} ({grp})"
                lines.append(f"    step {st.index + 1} {where}: on reject -> {then}")
    warn = list(warnings)
    if warn:
        lines += ["", "Warnings:"]
        for w in warn:
            lines += _wrap(w, "  - ", "    ")
    return lines


def _wrap(text: str, first: str, rest: str | None = None, width: int = 114) -> list[str]:
    """Wrap header text; a number and its unit (``12.3 %``, ``0.5 s``) stay on one line."""
    glued = text.replace(" %", "\u00a0%").replace(" s,", "\u00a0s,").replace(" s)", "\u00a0s)")
    rest = rest if rest is not None else first
    lines = textwrap.wrap(glued, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)
    return [line.replace("\u00a0", " ") for line in lines]


def render(plan: ExportPlan) -> tuple[str, dict[str, Any], list[str]]:
    """YAML text (header + config), the config dict, and the warnings; re-loads the text to check it."""
    config, g = build_config(plan)
    warnings = list(plan.warnings) + inexpressible(plan, "LiteLLM")
    if plan.gated:
        warnings.append("quality gates are not enforced by LiteLLM: see the header; the application must run them")
    rs = config["router_settings"]
    over = [c.name for c in plan.categories if len(c.failure_path()) > LITELLM_DEFAULT_MAX_FALLBACKS + 1]
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
    head = "\n".join(("# " + line).rstrip() for line in header(plan, g, warnings))
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)
    text = head + "\n\n" + body
    reloaded = yaml.safe_load(text)
    if reloaded != config:
        raise ExportError("the LiteLLM config does not re-load to what was written (YAML round trip failed)")
    groups = {d["model_name"] for d in reloaded["model_list"]} | set(rs.get("model_group_alias", {}))
    for key in ("fallbacks", "context_window_fallbacks"):
        merged: dict[str, list[str]] = {}
        for entry in reloaded["router_settings"].get(key, []):
            for k, v in entry.items():
                merged.setdefault(k, []).extend(v)
        check_fallbacks(groups, merged, what=key)
    return text, config, warnings
