"""The worksheet's candidate policies: chains of steps, routers (rules, classifiers, splits) and human review."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from routecalc.worksheet.base import (
    NonNegative,
    Positive,
    Probability,
    _Strict,
)
from routecalc.worksheet.catalog import ErrorType, _error_key
from routecalc.worksheet.names import FreeText, Name

StepTarget = Annotated[int, Field(ge=0)] | Literal["next", "fail", "deliver", "human_review"]


class StepSpec(_Strict):
    """One step of a chain: a model, a tool, or two models hedged in parallel. Targets are a later step's
    0-based index or a keyword; ``on_failure`` may name a target per error type."""

    model: Name | None = None
    tool: Name | None = None
    hedge: Annotated[list[Name], Field(min_length=2, max_length=2)] | None = None
    hedge_mode: Literal["first", "best"] = "first"
    cancel_loser: bool = True
    gate: bool | None = None
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    on_reject: StepTarget | None = None
    on_failure: StepTarget | dict[ErrorType, StepTarget] | None = None
    deadline_s: Positive | Literal["budget"] | None = None  # "budget": the category's latency_budget_s
    on_deadline: StepTarget | None = None
    latency_target_s: Positive | None = None
    batch_share: Probability | None = None  # share of requests this step sends through the batch API (task's)

    @field_validator("on_failure", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        """Error types as YAML reads them (``429:``, ``500:``) -> their names; only called when given."""
        return {_error_key(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _one(self) -> StepSpec:
        if (self.model is not None) + (self.tool is not None) + (self.hedge is not None) != 1:
            raise ValueError("a step names exactly one of model, tool, hedge")
        if self.hedge is not None and self.hedge[0] == self.hedge[1]:
            raise ValueError("hedge: two different models")
        if self.tool is not None and self.batch_share is not None:
            raise ValueError("batch_share: a tool step has no batch price")
        return self

    @property
    def names(self) -> list[str]:
        """The catalog entries (models or tool) this step calls."""
        return [self.model] if self.model else [self.tool] if self.tool else list(self.hedge or [])

    @property
    def bare(self) -> bool:
        """A model and nothing else that can be misplaced (most steps): no tool, hedge, gate, targets, deadline or
        latency target (a batch share may be set)."""
        return (
            self.tool is None
            and self.hedge is None
            and self.gate is None
            and self.on_reject is None
            and self.on_failure is None
            and self.deadline_s is None
            and self.on_deadline is None
            and self.latency_target_s is None
        )

    @property
    def label(self) -> str:
        """How the step reads in output: ``gpt-4.1``, ``tool faq-cache``, ``hedge a | b``."""
        if self.model:
            return self.model
        return f"tool {self.tool}" if self.tool else "hedge " + " | ".join(self.hedge or [])


class Condition(_Strict):
    """A rule's test on a request: its input tokens, or one of the category's attributes."""

    input_tokens_gt: Annotated[float, Field(ge=0)] | None = None
    input_tokens_le: Annotated[float, Field(gt=0)] | None = None
    attribute: Name | None = None
    in_: list[str] | None = Field(default=None, alias="in", min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        if (self.attribute is None) != (self.in_ is None):
            raise ValueError("an attribute test needs both attribute and in")
        if self.input_tokens_gt is None and self.input_tokens_le is None and self.attribute is None:
            raise ValueError("give input_tokens_gt, input_tokens_le or attribute + in")
        gt, le = self.input_tokens_gt, self.input_tokens_le
        if gt is not None and le is not None and le <= gt:
            raise ValueError("input_tokens_le must be above input_tokens_gt")
        return self


class Rule(_Strict):
    """``when`` a request matches, take ``route`` (the first matching rule wins); no ``when``: the default."""

    when: Condition | None = None
    route: Route


class SplitArm(_Strict):
    """One arm of a weighted split: ``weight`` of the traffic takes ``route``."""

    weight: Probability
    route: Route


class Router(_Strict):
    """Routing inside a category: exactly one of a weighted ``split``, ``rules``, or a ``classifier`` with a
    route per predicted label."""

    split: list[SplitArm] | None = None
    rules: list[Rule] | None = None
    classifier: Name | None = None
    routes: dict[Name, Route] | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("split"), dict):  # {model: weight, ...}
            data = {**data, "split": [{"weight": w, "route": m} for m, w in data["split"].items()]}
        return data

    @model_validator(mode="after")
    def _one(self) -> Router:
        given = [k for k in ("split", "rules", "classifier") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a router gives exactly one of split, rules, classifier")
        if (self.classifier is None) != (self.routes is None):
            raise ValueError("a classifier router needs routes: {label: route, ...}")
        if self.split is not None:
            if not self.split:
                raise ValueError("split: give at least one arm")
            if abs(sum(a.weight for a in self.split) - 1.0) > 1e-6:
                raise ValueError("split: weights must sum to 1")
        if self.rules is not None:
            if not self.rules or self.rules[-1].when is not None:
                raise ValueError("rules: end with a default rule (a route without when)")
            if any(r.when is None for r in self.rules[:-1]):
                raise ValueError("rules: only the last rule may go without when")
        return self


ROUTE_TAGS = ("<chain>", "<router>")  # validation branches of a route; dropped from error paths


def _route_kind(value: Any) -> str:
    return ROUTE_TAGS[1] if isinstance(value, dict | Router) else ROUTE_TAGS[0]


# a chain of steps, or a router of routes: one branch validated (by shape), so errors name one branch only
Route = Annotated[
    Annotated[list[StepSpec], Tag(ROUTE_TAGS[0])] | Annotated[Router, Tag(ROUTE_TAGS[1])],
    Discriminator(_route_kind),
]
for _model in (Rule, SplitArm, Router):
    _model.model_rebuild()


@functools.lru_cache(maxsize=4096)
def _named_step(name: str) -> StepSpec | None:
    """The step a bare model name stands for, validated once per name (frozen, so every route naming the model
    shares it; a big worksheet names a handful of models tens of thousands of times). None if the name is not
    valid: the step is then validated where it is written, so the error has its field path."""
    try:
        return StepSpec.model_validate({"model": name})
    except ValidationError:
        return None


def _step_shorthand(name: str) -> StepSpec | dict[str, str]:
    step = _named_step(name)
    return step if step is not None else {"model": name}


def _route_shorthand(route: Any) -> Any:
    """A model name, one step, or a list of names/steps -> a list of steps (a bare name's validated step, else a
    dict); routers recurse."""
    if isinstance(route, str):
        return [_step_shorthand(route)]
    if isinstance(route, dict) and any(k in route for k in ("split", "rules", "classifier")):
        out = dict(route)
        if isinstance(out.get("split"), list):
            out["split"] = [
                {**a, "route": _route_shorthand(a.get("route"))} if isinstance(a, dict) else a for a in out["split"]
            ]
        elif isinstance(out.get("split"), dict):
            out["split"] = [{"weight": w, "route": _route_shorthand(m)} for m, w in out["split"].items()]
        if isinstance(out.get("rules"), list):
            out["rules"] = [
                {**r, "route": _route_shorthand(r.get("route"))} if isinstance(r, dict) else r for r in out["rules"]
            ]
        if isinstance(out.get("routes"), dict):
            out["routes"] = {k: _route_shorthand(v) for k, v in out["routes"].items()}
        return out
    if isinstance(route, dict):
        return [route]
    if isinstance(route, list):
        return [_step_shorthand(s) if isinstance(s, str) else s for s in route]
    return route


def leaves(route: list[StepSpec] | Router) -> list[list[StepSpec]]:
    """Every chain a route can end in (a plain route is its own only leaf)."""
    if isinstance(route, list):
        return [route]
    if route.split is not None:
        return [leaf for arm in route.split for leaf in leaves(arm.route)]
    if route.rules is not None:
        return [leaf for rule in route.rules for leaf in leaves(rule.route)]
    return [leaf for r in (route.routes or {}).values() for leaf in leaves(r)]


class HumanReview(_Strict):
    """Where a last gate's reject goes when ``final_reject: human_review``: cost per request, latency."""

    cost: NonNegative
    latency_s: NonNegative


PolicyKind = Literal["static", "cascade", "fallback", "chain"]


class PolicySpec(_Strict):
    """A named routing policy: per category, a model (static) or an ordered chain of steps."""

    name: Name
    kind: PolicyKind
    routes: dict[Name, Route]
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    final_reject: Literal["deliver", "fail", "human_review"] = "deliver"
    human_review: HumanReview | None = None
    description: FreeText | None = None

    @model_validator(mode="before")
    @classmethod
    def _routes(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("routes"), dict):
            data = {**data, "routes": {cat: _route_shorthand(r) for cat, r in data["routes"].items()}}
        return data

    def chains(self, category: str) -> list[list[StepSpec]]:
        """Every chain this policy may use for ``category`` (one, unless the route has a router)."""
        return leaves(self.routes[category])


def step_gated(policy: PolicySpec, step: StepSpec, index: int, n_steps: int) -> bool:
    """Whether a step runs the category's quality gate.

    Cascades gate every step except, when ``final_reject`` is ``deliver``, the last one (its verdict could not
    change what is delivered, so nobody pays for it); fallback and static steps are ungated; chains say so.
    """
    if step.tool is not None:
        return False  # a tool answers or misses by itself; no validator reads it
    if policy.kind == "chain":
        return bool(step.gate)
    if policy.kind != "cascade":
        return False
    return index < n_steps - 1 or policy.final_reject != "deliver"
