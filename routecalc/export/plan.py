"""The export plan: one worksheet policy resolved into what every router target needs, plus its validation.

Pure (no I/O, no router libraries): per category the ordered steps with their model, LiteLLM id, retries, gate
and triggers; per model the prices per token, timeouts and limits; the expected metrics if a comparison was run.
The target modules (litellm, portkey, routecalc_json) only render a plan, and all of them run the same
fallback-graph checks here (unknown group, cycle, chain length) before anything is written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from routecalc._version import __version__
from routecalc.chains import STRONGEST, strongest_model
from routecalc.errors import ExportError, PolicyError
from routecalc.worksheet import MAX_CHAIN, Band, PolicySpec, StepSpec, Worksheet, step_gated

if TYPE_CHECKING:
    from routecalc.results import Comparison

FAIL, DELIVER, HUMAN = "fail", "deliver", "human_review"
Target = int | str  # a later step's index, or FAIL / DELIVER / HUMAN
ROUTE_PREFIX = "route-"
STEP_SEP = "~"  # route-<slug>~2, route-<slug>~ctx: slug() never produces "~", so these are never a category alias


@dataclass(frozen=True)
class Source:
    """Where the worksheet came from: path as given, SHA-256 of its bytes, and any scenario overlays."""

    path: str | None
    sha256: str
    scenarios: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ModelPlan:
    """One catalog model as the routers see it; prices are per token in the worksheet currency."""

    name: str
    provider: str
    litellm_model: str
    litellm_model_assumed: bool
    api_key_env: str
    input_cost_per_token: float
    output_cost_per_token: float
    cache_read_cost_per_token: float | None
    timeout_s: float
    context_window: int | None
    rpm: int | None
    tpm: int | None

    @property
    def bare_model(self) -> str:
        """The provider's own model id (LiteLLM id without its ``provider/`` prefix)."""
        return self.litellm_model.split("/", 1)[1] if "/" in self.litellm_model else self.litellm_model


@dataclass(frozen=True)
class GatePlan:
    """A category's validator, which routers cannot run: the application must."""

    catch: float
    false_reject: float
    cost_per_call: float
    cost_per_1m_tokens: float
    latency_s: float


@dataclass(frozen=True)
class StepPlan:
    """One step of a category's chain, with ``on_reject``/``on_failure`` resolved to an index or keyword."""

    index: int
    model: str
    retries: int
    gated: bool
    on_reject: Target | None  # None for an ungated step (it never rejects)
    on_failure: Target


@dataclass(frozen=True)
class CategoryPlan:
    """One category's route and targets."""

    name: str
    slug: str
    traffic_share: float
    quality_threshold: float
    latency_budget_s: float | None
    tokens_in_p95: float
    tokens_out_p95: float
    steps: tuple[StepPlan, ...]
    gate: GatePlan | None  # set only when some step is gated
    expected: Mapping[str, Any] | None = None
    context_fallback: str | None = None  # model to try when the first model's window is too small

    @property
    def alias(self) -> str:
        """The model name the application sends for this category."""
        return ROUTE_PREFIX + self.slug

    @property
    def tokens_needed(self) -> float:
        return self.tokens_in_p95 + self.tokens_out_p95

    def failure_path(self) -> list[int]:
        """Steps a request walks through on provider failures only: 0, on_failure(0), ... (what routers can do)."""
        path, s = [0], 0
        while isinstance(self.steps[s].on_failure, int):
            s = int(self.steps[s].on_failure)
            path.append(s)
        return path

    def reject_only_steps(self) -> list[int]:
        """Steps reached only when a gate rejects: the application has to call them itself."""
        on_path = set(self.failure_path())
        reached = set(on_path)
        for st in self.steps:
            for t in (st.on_failure, st.on_reject):
                if isinstance(t, int):
                    reached.add(t)
        return sorted(reached - on_path)


@dataclass(frozen=True)
class ExportPlan:
    """Everything an exporter renders; built once by :func:`build_plan`."""

    worksheet: str
    source: Source
    routecalc_version: str
    currency: str
    price_unit: str
    policy: str
    kind: str
    description: str | None
    final_reject: str
    human_review: tuple[float, float] | None  # (cost, latency_s)
    retries: int  # the policy's default retries (steps may override)
    backoff_s: float
    allowed_fails: int | None
    cooldown_s: float | None
    on_status_codes: tuple[int, ...]
    models: Mapping[str, ModelPlan]
    categories: tuple[CategoryPlan, ...]
    expected: Mapping[str, Any] | None
    warnings: tuple[str, ...] = field(default=())

    def model(self, name: str) -> ModelPlan:
        return self.models[name]

    @property
    def gated(self) -> bool:
        return any(st.gated for c in self.categories for st in c.steps)


# ---------------------------------------------------------------------------------------------------------
# Naming helpers shared by the targets


def slug(name: str) -> str:
    """A name safe in group names, target names and file names: lower case, ``[a-z0-9._-]``, never ``--``.

    Two properties the exports rely on: no ``~`` (``STEP_SEP``), so ``route-<slug>~<k>`` is never another
    category's alias, and no ``--``, so a deployment id ``<group>--<model>`` splits back into its group.
    """
    s = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    s = re.sub(r"-{2,}", "-", s).strip("-")
    return s or "x"


def step_group(alias: str, step: int | str) -> str:
    """The group of a category's later step (``route-x~2``) or context-window fallback (``route-x~ctx``)."""
    return f"{alias}{STEP_SEP}{step}"


def api_key_env(provider: str) -> str:
    """``openai`` -> ``OPENAI_API_KEY``: the environment variable a deployment reads its key from."""
    return re.sub(r"[^A-Z0-9]+", "_", provider.upper()).strip("_") + "_API_KEY"


def _per_token(value: float, tokens_per_unit: float) -> float:
    """Price per unit -> per token, rounded to 12 significant digits (0.4/1e6 is 4.0000000000000003e-07)."""
    return float(f"{value / tokens_per_unit:.12g}")


def _p95(band: Band) -> float:
    return float(band.p95) if band.p95 is not None else float(band.mean or 0.0)


# ---------------------------------------------------------------------------------------------------------
# Building the plan


def policy_names(ws: Worksheet) -> list[str]:
    """Every exportable policy: the worksheet's, then all-to-strongest if the catalog has a strongest model."""
    names = [p.name for p in ws.policies]
    if strongest_model(ws) is not None and STRONGEST not in names:
        names.append(STRONGEST)
    return names


def resolve_policy(ws: Worksheet, name: str) -> PolicySpec:
    """The named policy; ``all-to-strongest`` is built like the engines build it. PolicyError lists the names."""
    for p in ws.policies:
        if p.name == name:
            return p
    if name == STRONGEST and (strong := strongest_model(ws)) is not None:
        return PolicySpec(
            name=STRONGEST,
            kind="static",
            routes={t.name: [StepSpec(model=strong)] for t in ws.tasks},
            description=f"every category to {strong} (highest traffic-weighted pass rate)",
        )
    known = ", ".join(policy_names(ws)) or "none"
    raise PolicyError(f"unknown policy {name!r} (exportable: {known}, or 'winner')")


def content_source(ws: Worksheet) -> Source:
    """A Source for a worksheet that did not come from a file: SHA-256 of its canonical JSON."""
    return Source(None, hashlib.sha256(ws.model_dump_json().encode("utf-8")).hexdigest())


def _target(value: int | str | None, default: Target) -> Target:
    if value is None or value == "next":
        return default
    return value


def _model_plan(ws: Worksheet, name: str, warnings: list[str]) -> ModelPlan:
    m = ws.model(name)
    k = ws.tokens_per_price_unit
    assumed = m.litellm_model is None
    litellm_model = m.litellm_model or f"{m.provider}/{m.name}"
    if assumed:
        warnings.append(
            f"{m.name}: no litellm_model in the catalog; assumed LiteLLM id {litellm_model!r} "
            "(routecalc cannot check it offline; set models[].litellm_model)"
        )
    return ModelPlan(
        name=m.name,
        provider=m.provider,
        litellm_model=litellm_model,
        litellm_model_assumed=assumed,
        api_key_env=api_key_env(m.provider),
        input_cost_per_token=_per_token(m.price_in, k),
        output_cost_per_token=_per_token(m.price_out, k),
        cache_read_cost_per_token=_per_token(m.price_cache, k) if m.price_cache is not None else None,
        timeout_s=m.timeout_s,
        context_window=m.context_window,
        rpm=m.rpm,
        tpm=m.tpm,
    )


def _expected(comparison: Comparison | None, policy: str) -> tuple[dict[str, Any] | None, dict[str, dict]]:
    if comparison is None:
        return None, {}
    try:
        r = comparison.policy(policy)
    except PolicyError:
        return None, {}
    overall = {
        "monthly_cost": r.monthly_cost,
        "cost_per_request": r.cost_per_request,
        "quality": r.quality,
        "p50_s": r.p50_s,
        "p95_s": r.p95_s,
        "p99_s": r.p99_s,
        "escalation": r.escalation,
        "fallback": r.fallback,
        "failed": r.failed,
        "meets_targets": r.meets_targets,
        "answered": dict(sorted(r.answered.items())),
        "samples": comparison.samples,
        "seed": comparison.seed,
        "requests_per_month": comparison.requests_per_month,
    }
    per_cat = {
        c.category: {
            "cost_per_request": c.cost_per_request,
            "quality": c.quality,
            "p95_s": c.p95_s,
            "escalation": c.escalation,
            "fallback": c.fallback,
            "meets_targets": c.ok,
        }
        for c in r.categories
    }
    return overall, per_cat


def _context_fallback(ws: Worksheet, task_name: str, chain: list[str], needed: float) -> str | bool | None:
    """A model with a larger window for a category whose first model's window is below its p95 tokens.

    Prefers a later step of the chain, else the catalog model with a pass rate for the category and the
    largest window. Returns None when no fallback is needed, False when one is needed but none exists.
    """
    first = ws.model(chain[0])
    if first.context_window is None or first.context_window >= needed:
        return None
    for name in chain[1:]:
        w = ws.model(name).context_window
        if w is not None and w > first.context_window:
            return name
    task = next(t for t in ws.tasks if t.name == task_name)
    others = [
        m
        for m in ws.models
        if m.name in task.rates and m.context_window is not None and m.context_window > first.context_window
    ]
    if not others:
        return False
    return max(others, key=lambda m: (m.context_window, task.rates[m.name], m.name)).name


def build_plan(
    ws: Worksheet,
    policy_name: str,
    comparison: Comparison | None = None,
    source: Source | None = None,
) -> ExportPlan:
    """Resolve ``policy_name`` in ``ws`` into an ExportPlan (raises PolicyError / ExportError)."""
    pol = resolve_policy(ws, policy_name)
    warnings: list[str] = []
    default_retries = pol.retries if pol.retries is not None else ws.defaults.retries
    overall, per_cat = _expected(comparison, pol.name)
    if comparison is not None and overall is None:
        warnings.append(f"the comparison has no result for {pol.name!r}; expected metrics are left out")

    used: list[str] = []
    categories = []
    slugs: dict[str, str] = {}
    for task in ws.tasks:
        spec_steps = pol.routes[task.name]
        n = len(spec_steps)
        if n > MAX_CHAIN:
            raise ExportError(f"{pol.name} / {task.name}: chain of {n} steps; at most {MAX_CHAIN}")
        steps = []
        for i, s in enumerate(spec_steps):
            gated = step_gated(pol, s, i, n)
            nxt: Target = i + 1 if i + 1 < n else FAIL
            steps.append(
                StepPlan(
                    index=i,
                    model=s.model,
                    retries=s.retries if s.retries is not None else default_retries,
                    gated=gated,
                    on_reject=_target(s.on_reject, i + 1 if i + 1 < n else pol.final_reject) if gated else None,
                    on_failure=_target(s.on_failure, nxt),
                )
            )
            if s.model not in used:
                used.append(s.model)
        chain = [s.model for s in spec_steps]
        needed = _p95(task.tokens_in) + _p95(task.tokens_out)
        ctx = _context_fallback(ws, task.name, chain, needed)
        if ctx is False:
            warnings.append(
                f"{task.name}: p95 request ({needed:,.0f} tokens) exceeds {chain[0]}'s context window "
                f"({ws.model(chain[0]).context_window:,}) and no catalog model has a larger one"
            )
            ctx = None
        if isinstance(ctx, str) and ctx not in used:
            used.append(ctx)
        sl = slug(task.name)
        if sl in slugs:
            raise ExportError(f"categories {slugs[sl]!r} and {task.name!r} both map to route name {sl!r}")
        slugs[sl] = task.name
        v = task.validator
        gate = (
            GatePlan(v.catch.rate, v.false_reject.rate, v.cost_per_call, v.cost_per_1m_tokens, v.latency_s)
            if v is not None and any(st.gated for st in steps)
            else None
        )
        categories.append(
            CategoryPlan(
                name=task.name,
                slug=sl,
                traffic_share=task.traffic_share / (100.0 if ws.share_unit == "percent" else 1.0),
                quality_threshold=task.quality_threshold,
                latency_budget_s=task.latency_budget_s,
                tokens_in_p95=_p95(task.tokens_in),
                tokens_out_p95=_p95(task.tokens_out),
                steps=tuple(steps),
                gate=gate,
                expected=per_cat.get(task.name),
                context_fallback=ctx if isinstance(ctx, str) else None,
            )
        )
    models = {name: _model_plan(ws, name, warnings) for name in used}
    human = pol.human_review
    return ExportPlan(
        worksheet=ws.name,
        source=source or content_source(ws),
        routecalc_version=__version__,
        currency=ws.currency,
        price_unit=ws.price_unit,
        policy=pol.name,
        kind=pol.kind,
        description=pol.description,
        final_reject=pol.final_reject,
        human_review=(human.cost, human.latency_s) if human else None,
        retries=default_retries,
        backoff_s=ws.defaults.backoff_s,
        allowed_fails=ws.defaults.allowed_fails,
        cooldown_s=ws.defaults.cooldown_s,
        on_status_codes=tuple(ws.defaults.on_status_codes),
        models=models,
        categories=tuple(categories),
        expected=overall,
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------------------------------------
# Router-independent limits of what a router can express


def inexpressible(plan: ExportPlan, router: str) -> list[str]:
    """Sentences for every part of the policy a failure-only fallback router cannot do by itself."""
    out = []
    for c in plan.categories:
        last = c.steps[-1]
        for st in c.steps:
            if st.on_failure == FAIL and st is not last:
                out.append(
                    f"{c.name}: step {st.index + 1} ({st.model}) fails the request on provider failure; "
                    f"{router} only falls back along the failure path {_path(c)}"
                )
            elif isinstance(st.on_failure, int) and st.on_failure != st.index + 1:
                out.append(
                    f"{c.name}: step {st.index + 1} ({st.model}) skips to step {st.on_failure + 1} on failure; "
                    f"exported as the failure path {_path(c)}"
                )
        for s in c.reject_only_steps():
            out.append(
                f"{c.name}: step {s + 1} ({c.steps[s].model}) runs only when a gate rejects; {router} never "
                "sends traffic there on its own: the application must call it"
            )
    if plan.gated and plan.final_reject != DELIVER:
        out.append(
            f"final_reject is {plan.final_reject!r}: a last-step gate reject must be handled by the application "
            f"({router} delivers whatever the last model answers)"
        )
    return out


def _path(c: CategoryPlan) -> str:
    return " -> ".join(c.steps[s].model for s in c.failure_path())


# ---------------------------------------------------------------------------------------------------------
# Validation shared by every target


def check_fallbacks(
    groups: Collection[str],
    fallbacks: Mapping[str, Sequence[str]],
    max_chain: int = MAX_CHAIN,
    what: str = "fallbacks",
) -> int:
    """Refuse a fallback mapping a router would mis-handle; return the most groups one request can try.

    Every key and target must be an existing group, the graph must be acyclic (a fallback loop retries forever
    in production), and no request may try more than ``max_chain`` groups. A router walks fallbacks
    transitively and in list order, so a group's tries are itself plus every try of each of its targets.
    """
    known = set(groups)
    for src, targets in fallbacks.items():
        if src not in known:
            raise ExportError(f"{what}: {src!r} is not a model group (groups: {', '.join(sorted(known))})")
        for t in targets:
            if t not in known:
                raise ExportError(f"{what}: {src!r} falls back to unknown group {t!r}")
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    tries: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> int:
        if state.get(node) == 2:
            return tries[node]
        if state.get(node) == 1:
            cycle = [*stack[stack.index(node) :], node]
            raise ExportError(f"{what}: fallback cycle {' -> '.join(cycle)} (a request would loop)")
        state[node] = 1
        stack.append(node)
        total = 1 + sum(visit(t, stack) for t in fallbacks.get(node, ()))
        stack.pop()
        state[node] = 2
        tries[node] = total
        return total

    longest = 0
    for g in sorted(known):
        n = visit(g, [])
        if n > max_chain:
            raise ExportError(
                f"{what}: a request to {g!r} could try {n} groups; at most {max_chain} "
                "(long fallback chains multiply latency and cost when a provider is down)"
            )
        longest = max(longest, n)
    return longest


def check_chain_length(name: str, length: int, max_chain: int = MAX_CHAIN) -> None:
    """Refuse an explicit target list longer than ``max_chain``."""
    if length > max_chain:
        raise ExportError(f"{name}: chain of {length} targets; at most {max_chain}")


def pct(x: float) -> str:
    """0.1234 -> ``12.3 %`` (header text)."""
    return f"{x * 100:.1f} %"
