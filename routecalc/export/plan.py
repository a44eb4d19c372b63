"""The export plan: one compiled policy laid out as what every router target needs.

Data flows one way: the plan reads the compiled ``(P, C, L, S)`` chains (``RoutingProblem.chains``: each step's
model, retries, gate, per-error-type failure targets, overflow target, deadline, hedge, tool) and the lanes the
engines use (``routes.lanes``: which router decisions lead to each chain), never the policy's YAML again. Per
category it holds the lanes with their steps and their share of the category's traffic, per model the prices per
token, timeouts and error shares, and the expected metrics when a comparison was run. The target modules
(litellm, portkey, routecalc_json) only render a plan; :mod:`routecalc.export.notes` says what a router cannot do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from routecalc._version import __version__
from routecalc.chains import DELIVER as _DELIVER
from routecalc.chains import FAIL as _FAIL
from routecalc.chains import HUMAN as _HUMAN
from routecalc.chains import STRONGEST, RoutingProblem, compile_worksheet
from routecalc.errors import ExportError, PolicyError
from routecalc.routes import Branch, lanes, route_text
from routecalc.worksheet import ERROR_TYPES, MAX_CHAIN, Band, Router, Worksheet

if TYPE_CHECKING:
    from routecalc.results import Comparison

FAIL, DELIVER, HUMAN = "fail", "deliver", "human_review"
Target = int | str  # a later step's index, or FAIL / DELIVER / HUMAN
ROUTE_PREFIX = "route-"
STEP_SEP = "~"  # route-<slug>~2, route-<slug>~<lane>: slug() never produces "~", so these are never a category alias
KEY_SEP = "."  # nested lane keys: rule2.simple
_KEYWORDS = {_FAIL: FAIL, _DELIVER: DELIVER, _HUMAN: HUMAN}
ROUTER_ERRORS = ("timeout", "5xx", "429")  # what a router's generic fallbacks catch (content_filter has its own)


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
    errors: Mapping[str, float]  # share of its failures by type (timeout, 5xx, 429, content_filter)

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
    """One compiled step of a lane; targets are a later step's index or a keyword (``fail``, ...)."""

    index: int
    model: str | None  # what a router calls: the model, a hedge's first model; None for a tool
    tool: str | None
    hedge: str | None  # a hedged step's second model
    retries: int
    gated: bool
    on_reject: Target | None  # a gated step's reject target; a tool's miss target; None otherwise
    on_failure: Mapping[str, Target]  # per error type (ERROR_TYPES)
    on_overflow: Target | None  # a prompt longer than the model's window; None: the category never overflows it
    deadline_s: float | None = None
    on_deadline: Target | None = None
    latency_target_s: float | None = None

    @property
    def label(self) -> str:
        """``gpt-4.1``, ``tool kb-search``, ``hedge a | b``."""
        if self.tool is not None:
            return f"tool {self.tool}"
        return f"hedge {self.model} | {self.hedge}" if self.hedge else str(self.model)

    @property
    def by_target(self) -> dict[Target, list[str]]:
        """Error types grouped by where they go, in ERROR_TYPES order."""
        out: dict[Target, list[str]] = {}
        for t in ERROR_TYPES:
            out.setdefault(self.on_failure[t], []).append(t)
        return out


@dataclass(frozen=True)
class LanePlan:
    """One chain of a category's route and the router decisions leading to it (``path``, outermost first)."""

    key: str  # "" for a plain route; else the path's labels, e.g. "rule1", "simple", "else.arm2"
    path: tuple[Branch, ...]
    steps: tuple[StepPlan, ...]
    share: float  # of the category's requests (compiled lane weights x tier shares x segment probabilities)

    @property
    def entry(self) -> int | None:
        """The first step a router calls: leading tool steps are the application's (a miss goes on)."""
        s: Target | None = 0
        while isinstance(s, int) and self.steps[s].tool is not None:
            s = self.steps[s].on_reject
        return s if isinstance(s, int) else None

    def path_by(self, error_type: str) -> list[int]:
        """Router steps a request walks when every try fails with ``error_type``: entry, its target, ...

        A tool step ends the path: routers cannot call tools."""
        s = self.entry
        path: list[int] = []
        while isinstance(s, int) and self.steps[s].tool is None and s not in path:
            path.append(s)
            s = self.steps[s].on_failure[error_type]
        return path

    def failure_path(self) -> list[int]:
        """The path of provider 5xx failures (what "falls back in order" means)."""
        return self.path_by("5xx")

    def router_steps(self, rejects: bool = False) -> list[int]:
        """Every model step a router reaches from the entry on failures of any type, overflows and deadlines
        (and, with ``rejects``, the steps the application calls on a gate's reject)."""
        start = self.entry
        seen: list[int] = []
        todo = [start] if start is not None else []
        while todo:
            s = todo.pop(0)
            if s in seen or self.steps[s].tool is not None:
                continue
            seen.append(s)
            st = self.steps[s]
            for t in (*st.on_failure.values(), st.on_overflow, st.on_deadline, st.on_reject if rejects else None):
                if isinstance(t, int):
                    todo.append(t)
        return sorted(seen)

    def reject_only_steps(self) -> list[int]:
        """Model steps reached only when a gate rejects: the application has to call them itself."""
        on_path = set(self.router_steps())
        reached = set(on_path)
        for st in self.steps:
            if st.tool is None and isinstance(st.on_reject, int):
                reached.add(st.on_reject)
        return sorted(s for s in reached - on_path if self.steps[s].tool is None and s > (self.entry or 0))

    @property
    def where(self) -> str:
        """The path in words: ``rule 1 / simple``; empty for a plain route."""
        return " / ".join(b.label for b in self.path)


@dataclass(frozen=True)
class CategoryPlan:
    """One category's route: its lanes and targets."""

    name: str
    slug: str
    traffic_share: float
    quality_threshold: float
    latency_budget_s: float | None
    tokens_in_p95: float
    tokens_out_p95: float
    lanes: tuple[LanePlan, ...]
    gate: GatePlan | None  # set only when some step is gated
    route: str  # the route as a reviewer reads it (routes.route_text)
    expected: Mapping[str, Any] | None = None

    @property
    def alias(self) -> str:
        """The model name the application sends for this category."""
        return ROUTE_PREFIX + self.slug

    @property
    def routed(self) -> bool:
        """The route has a router (split, rules, classifier): more than one lane."""
        return len(self.lanes) > 1 or bool(self.lanes[0].path)

    @property
    def steps(self) -> tuple[StepPlan, ...]:
        """The steps of a plain (one-lane) route."""
        if self.routed:
            raise ExportError(f"{self.name}: a routed category has one chain per lane (use .lanes)")
        return self.lanes[0].steps

    def failure_path(self) -> list[int]:
        """The 5xx failure path of a plain route."""
        return self.lanes[0].failure_path() if not self.routed else []


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
        return any(st.gated for c in self.categories for lane in c.lanes for st in lane.steps)

    @property
    def plain(self) -> bool:
        """No routers, tools, hedges, deadlines or per-type targets: one chain per category, one failure path."""
        for c in self.categories:
            if c.routed:
                return False
            for st in c.steps:
                if st.tool or st.hedge or st.deadline_s is not None or len(st.by_target) > 1:
                    return False
                if st.on_overflow is not None and st.on_overflow != st.on_failure["5xx"]:
                    return False
        return True


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
    """The group of a later step (``route-x~2``) or of a lane (``route-x~simple``)."""
    return f"{alias}{STEP_SEP}{step}"


def branch_key(b: Branch) -> str:
    """A lane-path label safe in group and target names: ``rule1``, ``else``, ``arm2``, ``simple``."""
    if b.kind == "split":
        return f"arm{b.index + 1}"
    if b.kind == "rule":
        return "else" if b.when is None else f"rule{b.index + 1}"
    return slug(b.label)


def lane_key(path: tuple[Branch, ...]) -> str:
    return KEY_SEP.join(branch_key(b) for b in path)


def api_key_env(provider: str) -> str:
    """``openai`` -> ``OPENAI_API_KEY``: the environment variable a deployment reads its key from."""
    return re.sub(r"[^A-Z0-9]+", "_", provider.upper()).strip("_") + "_API_KEY"


def _per_token(value: float) -> float:
    """Rounded to 12 significant digits (0.4/1e6 is 4.0000000000000003e-07)."""
    return float(f"{value:.12g}")


def _p95(band: Band) -> float:
    return float(band.p95) if band.p95 is not None else float(band.mean or 0.0)


def pct(x: float) -> str:
    """0.1234 -> ``12.3 %`` (header text)."""
    return f"{x * 100:.1f} %"


# ---------------------------------------------------------------------------------------------------------
# Building the plan


def policy_names(problem: RoutingProblem) -> list[str]:
    """Every exportable policy: the compiled ones (the worksheet's, then all-to-strongest)."""
    return list(problem.chains.names)


def content_source(ws: Worksheet) -> Source:
    """A Source for a worksheet that did not come from a file: SHA-256 of its canonical JSON."""
    return Source(None, hashlib.sha256(ws.model_dump_json().encode("utf-8")).hexdigest())


def _target(value: int) -> Target:
    return _KEYWORDS.get(int(value), int(value))


def _model_plan(ws: Worksheet, problem: RoutingProblem, m: int, warnings: list[str]) -> ModelPlan:
    mt = problem.models
    spec = ws.model(mt.names[m])
    assumed = spec.litellm_model is None
    litellm_model = spec.litellm_model or f"{spec.provider}/{spec.name}"
    if assumed:
        warnings.append(
            f"{spec.name}: no litellm_model in the catalog; assumed LiteLLM id {litellm_model!r} "
            "(routecalc cannot check it offline; set models[].litellm_model)"
        )
    return ModelPlan(
        name=spec.name,
        provider=spec.provider,
        litellm_model=litellm_model,
        litellm_model_assumed=assumed,
        api_key_env=api_key_env(spec.provider),
        input_cost_per_token=_per_token(mt.price_in[m]),
        output_cost_per_token=_per_token(mt.price_out[m]),
        cache_read_cost_per_token=_per_token(mt.price_cache[m]) if spec.price_cache is not None else None,
        timeout_s=float(mt.timeout_s[m]),
        context_window=spec.context_window,
        rpm=spec.rpm,
        tpm=spec.tpm,
        errors={t: float(mt.errors[m, k]) for k, t in enumerate(ERROR_TYPES)},
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


def _step(problem: RoutingProblem, at: tuple[int, int, int, int], c: int) -> StepPlan:
    """One step of the compiled arrays at ``(p, c, lane, s)``."""
    ch, names = problem.chains, problem.models.names
    m = int(ch.model[at])
    tool = bool(ch.tool[at])
    gated = bool(ch.gated[at])
    overflows = bool(np.isfinite(problem.segments.window[c, m]))
    deadline = float(ch.deadline_s[at])
    target = float(ch.latency_target_s[at])
    return StepPlan(
        index=at[3],
        model=None if tool else names[m],
        tool=names[m] if tool else None,
        hedge=names[int(ch.hedge[at])] if ch.hedge[at] >= 0 else None,
        retries=int(ch.retries[at]),
        gated=gated,
        on_reject=_target(ch.on_reject[at]) if gated or tool else None,
        on_failure={t: _target(ch.on_failure[(*at, k)]) for k, t in enumerate(ERROR_TYPES)},
        on_overflow=_target(ch.on_overflow[at]) if overflows and not tool else None,
        deadline_s=deadline if np.isfinite(deadline) else None,
        on_deadline=_target(ch.on_deadline[at]) if np.isfinite(deadline) else None,
        latency_target_s=target if np.isfinite(target) else None,
    )


def _lane_shares(ws: Worksheet, problem: RoutingProblem, p: int, c: int) -> np.ndarray:
    """Each lane's share of category ``c``'s requests: sum over (tier, segment) of the compiled lane weight
    times the tier's share and the segment's probability."""
    w = problem.chains.lane_weight[p, c]  # (T, G, L)
    tiers = ws.tasks[c].tiers
    tier_share = np.zeros(w.shape[0])
    if tiers:
        tier_share[: len(tiers)] = [t.share for t in tiers.values()]
    else:
        tier_share[0] = 1.0
    return np.einsum("tgl,t,g->l", w, tier_share, problem.segments.prob[c])


def build_plan(
    ws: Worksheet,
    policy_name: str,
    comparison: Comparison | None = None,
    source: Source | None = None,
) -> ExportPlan:
    """Lay out the compiled policy ``policy_name`` (from the comparison's problem, or compiled here)."""
    problem = comparison.problem if comparison is not None else compile_worksheet(ws)
    ch = problem.chains
    if policy_name not in ch.names:
        known = ", ".join(policy_names(problem)) or "none"
        raise PolicyError(f"unknown policy {policy_name!r} (exportable: {known}, or 'winner')")
    p = ch.names.index(policy_name)
    pol = next((x for x in ws.policies if x.name == policy_name), None)
    warnings: list[str] = []
    overall, per_cat = _expected(comparison, policy_name)
    if comparison is not None and overall is None:
        warnings.append(f"the comparison has no result for {policy_name!r}; expected metrics are left out")

    used: list[int] = []
    categories = []
    slugs: dict[str, str] = {}
    tiers = [list(t.tiers or ()) for t in ws.tasks]
    for c, task in enumerate(ws.tasks):
        route = pol.routes[task.name] if pol is not None else None
        paths = (
            [lane.path for lane in lanes(ws, route, c, problem.segments, tiers[c])]
            if isinstance(route, Router)
            else [()]
        )
        shares = _lane_shares(ws, problem, p, c)
        lane_plans = []
        for li, path in enumerate(paths):
            n = int((ch.model[p, c, li] >= 0).sum())
            if n > MAX_CHAIN:
                raise ExportError(f"{policy_name} / {task.name}: chain of {n} steps; at most {MAX_CHAIN}")
            steps = tuple(_step(problem, (p, c, li, s), c) for s in range(n))
            for s in range(n):
                for m in (int(ch.model[p, c, li, s]), int(ch.hedge[p, c, li, s])):
                    if m >= 0 and not problem.models.is_tool[m] and m not in used:
                        used.append(m)
            lane_plans.append(LanePlan(lane_key(path), path, steps, float(shares[li])))
        keys = [lp.key for lp in lane_plans]
        if len(set(keys)) != len(keys):
            raise ExportError(f"{task.name}: two lanes of the route map to the same name ({', '.join(keys)})")
        sl = slug(task.name)
        if sl in slugs:
            raise ExportError(f"categories {slugs[sl]!r} and {task.name!r} both map to route name {sl!r}")
        slugs[sl] = task.name
        v = task.validator
        gate = (
            GatePlan(v.catch.rate, v.false_reject.rate, v.cost_per_call, v.cost_per_1m_tokens, v.latency_s)
            if v is not None and any(st.gated for lp in lane_plans for st in lp.steps)
            else None
        )
        text = route_text(pol, route) if pol is not None and route is not None else lane_plans[0].steps[0].label
        categories.append(
            CategoryPlan(
                name=task.name,
                slug=sl,
                traffic_share=float(problem.tasks.share[c]),
                quality_threshold=task.quality_threshold,
                latency_budget_s=task.latency_budget_s,
                tokens_in_p95=_p95(task.tokens_in),
                tokens_out_p95=_p95(task.tokens_out),
                lanes=tuple(lane_plans),
                gate=gate,
                route=text,
                expected=per_cat.get(task.name),
            )
        )
    models = {problem.models.names[m]: _model_plan(ws, problem, m, warnings) for m in used}
    final_reject = pol.final_reject if pol is not None else DELIVER
    if pol is not None:
        description = pol.description
        retries = pol.retries if pol.retries is not None else ws.defaults.retries
    else:  # a baseline the engines add (all-to-strongest): say what it compiled to
        description = f"every category to {categories[0].lanes[0].steps[0].label}" if policy_name == STRONGEST else None
        retries = ws.defaults.retries
    return ExportPlan(
        worksheet=ws.name,
        source=source or content_source(ws),
        routecalc_version=__version__,
        currency=ws.currency,
        price_unit=ws.price_unit,
        policy=policy_name,
        kind=ch.kinds[p],
        description=description,
        final_reject=final_reject,
        human_review=((float(ch.human_cost[p]), float(ch.human_latency_s[p])) if final_reject == HUMAN else None),
        retries=retries,
        backoff_s=float(ch.backoff_s[p]),
        allowed_fails=ws.defaults.allowed_fails,
        cooldown_s=ws.defaults.cooldown_s,
        on_status_codes=tuple(ws.defaults.on_status_codes),
        models=models,
        categories=tuple(categories),
        expected=overall,
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------------------------------------
# The route as a tree of router decisions (rebuilt from the lanes' paths)


@dataclass
class Node:
    """A router node of a category's route: ``kind`` split / rule / classifier with ``children`` in order, or a
    leaf ``chain`` holding its lane. ``key`` is the lane-key prefix of the node; ``share`` its traffic share."""

    kind: str
    key: str
    share: float = 0.0
    lane: LanePlan | None = None
    children: list[tuple[Branch, Node]] = field(default_factory=list)

    def lanes(self) -> list[LanePlan]:
        if self.lane is not None:
            return [self.lane]
        return [lane for _, child in self.children for lane in child.lanes()]

    @property
    def default(self) -> tuple[Branch, Node]:
        """The child a request without the deciding information takes: a rule router's ``else``, else the child
        with the most traffic."""
        for b, child in self.children:
            if b.kind == "rule" and b.when is None:
                return b, child
        return max(self.children, key=lambda bc: bc[1].share)


def route_tree(c: CategoryPlan) -> Node:
    """The category's route as nested router nodes (a plain route is one ``chain`` leaf)."""

    def build(lanes_: list[LanePlan], depth: int, key: str) -> Node:
        share = sum(lp.share for lp in lanes_)
        if len(lanes_) == 1 and len(lanes_[0].path) == depth:
            return Node("chain", key, share, lane=lanes_[0])
        node = Node(lanes_[0].path[depth].kind, key, share)
        order: list[int] = []
        groups: dict[int, list[LanePlan]] = {}
        for lp in lanes_:
            i = lp.path[depth].index
            if i not in groups:
                order.append(i)
            groups.setdefault(i, []).append(lp)
        for i in order:
            b = groups[i][0].path[depth]
            child_key = (key + KEY_SEP if key else "") + branch_key(b)
            node.children.append((b, build(groups[i], depth + 1, child_key)))
        return node

    return build(list(c.lanes), 0, "")
