"""The worksheet schema: frozen, strict pydantic models of traffic, models and candidate policies.

Validation of the whole document (cross-section checks, every problem at once) lives in ``checks.py``;
reading files in ``load.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from routecalc.errors import InputError, PolicyError
from routecalc.limits import MAX_NUMBER
from routecalc.worksheet.base import (  # noqa: F401 - re-exported: the schema's public names live here
    DAYS_PER_MONTH,
    DEFAULT_STATUS_CODES,
    MAX_CHAIN,
    MAX_SPREAD,
    SCHEMA_VERSION,
    STRICT,
    Z95,
    Count,
    NonNegative,
    Positive,
    Probability,
    _Strict,
)
from routecalc.worksheet.catalog import (  # noqa: F401 - re-exported
    ERROR_TYPES,
    Band,
    ClassifierSpec,
    ErrorType,
    Latency,
    ModelSpec,
    ToolSpec,
    _error_key,
)
from routecalc.worksheet.names import FreeText, Name
from routecalc.worksheet.policies import (  # noqa: F401 - re-exported
    ROUTE_TAGS,
    Condition,
    HumanReview,
    PolicyKind,
    PolicySpec,
    Route,
    Router,
    Rule,
    SplitArm,
    StepSpec,
    StepTarget,
    _route_kind,
    _route_shorthand,
    leaves,
    step_gated,
)
from routecalc.worksheet.pricing import Discount, PricesFrom
from routecalc.worksheet.tasks import (  # noqa: F401 - re-exported
    MAX_CORRELATION,
    MAX_TABLE_MODELS,
    TABLE_RATE_TOLERANCE,
    CatchRate,
    Conditional,
    Constraints,
    FalseRejectRate,
    Outcomes,
    PassRate,
    Pattern,
    Rate,
    TaskSpec,
    Tier,
    ToolHit,
    Validator,
    _is_int,
    conditional_range,
)


class Spike(_Strict):
    """One day of the month with `factor` times its usual traffic (a launch, an incident, a batch job)."""

    day: Annotated[int, Field(ge=1, le=31)]
    factor: Positive


class TrafficProfile(_Strict):
    """How the month's requests spread over time (``routecalc simulate``; ``calibrate logs`` writes it).

    Weights are relative (any positive scale; normalised on use): ``hourly`` per hour of day 0-23 (UTC), ``weekly``
    per weekday Monday..Sunday. ``growth_per_month`` compounds smoothly over the month (0.05 = +5 % by its end).
    """

    hourly: Annotated[list[NonNegative], Field(min_length=24, max_length=24)] | None = None
    weekly: Annotated[list[NonNegative], Field(min_length=7, max_length=7)] | None = None
    growth_per_month: Annotated[float, Field(gt=-1, le=10)] = 0.0
    spikes: list[Spike] = []

    @model_validator(mode="after")
    def _weights(self) -> TrafficProfile:
        for name in ("hourly", "weekly"):
            w = getattr(self, name)
            if w is not None and sum(w) <= 0:
                raise ValueError(f"{name} weights are all zero")
        days = [s.day for s in self.spikes]
        if len(set(days)) != len(days):
            raise ValueError("a day appears twice in spikes")
        return self


class Volume(_Strict):
    """Traffic volume: exactly one of requests per month or per day (month = 365/12 days)."""

    requests_per_month: NonNegative | None = None
    requests_per_day: NonNegative | None = None
    profile: TrafficProfile | None = None  # shape over hours, weekdays and the month; flat if absent

    @model_validator(mode="after")
    def _one(self) -> Volume:
        if (self.requests_per_month is None) == (self.requests_per_day is None):
            raise ValueError("give exactly one of requests_per_month, requests_per_day")
        return self

    @property
    def per_month(self) -> float:
        if self.requests_per_month is not None:
            return self.requests_per_month
        return float(self.requests_per_day) * DAYS_PER_MONTH


class Defaults(_Strict):
    """Settings every policy inherits unless it overrides them."""

    retries: Annotated[int, Field(ge=0, le=10)] = 0
    backoff_s: NonNegative = 0.0
    bill_failed_input: bool = False
    allowed_fails: Annotated[int, Field(ge=0, le=int(MAX_NUMBER))] | None = None
    cooldown_s: NonNegative | None = None
    on_status_codes: list[Annotated[int, Field(ge=100, le=599)]] = list(DEFAULT_STATUS_CODES)
    context_overflow: Literal["next", "fail"] = "next"  # a request longer than a model's window: skip it, or fail
    deadline_billing: Literal["full", "input", "none"] = "full"  # what a try abandoned at its deadline bills


from routecalc.worksheet.operations import Operations  # noqa: E402 - it builds on the models above


class Worksheet(_Strict):
    """A whole worksheet, validated. See README "Worksheet format" for an annotated example."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Name
    description: FreeText | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    price_unit: Literal["per_1m", "per_1k"] = "per_1m"
    share_unit: Literal["fraction", "percent"] = "fraction"
    volume: Volume
    defaults: Defaults = Defaults()
    discounts: dict[Name, Discount] = {}  # provider -> fraction off every price of its models
    prices_from: PricesFrom | None = None
    models: Annotated[list[ModelSpec], Field(min_length=1)]
    tools: list[ToolSpec] = []
    classifiers: list[ClassifierSpec] = []
    tasks: Annotated[list[TaskSpec], Field(min_length=1)]
    constraints: Constraints | None = None
    policies: list[PolicySpec] = []
    baseline: Name | None = None
    operations: Operations | None = None  # time effects for routecalc simulate (operations.py)

    @property
    def tokens_per_price_unit(self) -> float:
        return 1e6 if self.price_unit == "per_1m" else 1e3

    @property
    def shares(self) -> list[float]:
        """Traffic shares as fractions."""
        k = 100.0 if self.share_unit == "percent" else 1.0
        return [t.traffic_share / k for t in self.tasks]

    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise InputError(f"unknown model {name!r}")

    def policy(self, name: str) -> PolicySpec:
        for p in self.policies:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.policies) or "none"
        raise PolicyError(f"unknown policy {name!r} (worksheet has: {known})")

    def as_document(self) -> dict[str, Any]:
        """The worksheet as a plain document (what a YAML file would hold) that validates to an equal worksheet:
        for re-validating an edited copy (``model_copy`` checks nothing)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def json_schema() -> dict[str, Any]:
    """JSON Schema of the worksheet format, for editors (YAML language servers) and CI checks.

    Describes what a user may write, including the shorthands the loader accepts: a number for a band, a model
    name for a step, one step for a route, a CSV path for the task table.
    """
    schema = _names_as_property_names(Worksheet.model_json_schema())
    defs = schema["$defs"]
    defs["BandRange"] = defs.pop("Band")
    defs["Band"] = {
        "description": "A fixed number, {mean: m}, or a lognormal {p50: a, p95: b}.",
        "anyOf": [{"type": "number", "minimum": 0}, {"$ref": "#/$defs/BandRange"}],
    }
    for rate_cls in (PassRate, CatchRate, FalseRejectRate):
        key = rate_cls.count_key
        counted = {"type": "integer", "minimum": 0}
        defs[rate_cls.__name__] = {
            "description": (rate_cls.__doc__ or "").strip().splitlines()[0],
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {
                    "type": "object",
                    "properties": {key: counted, "of": {"type": "integer", "minimum": 1}},
                    "required": [key, "of"],
                    "additionalProperties": False,
                },
            ],
        }
    step = {"anyOf": [{"type": "string", "description": "a model name"}, {"$ref": "#/$defs/StepSpec"}]}
    defs["Route"] = {
        "description": "A model name, one step, a list of them (a chain), or a router (split, rules, classifier).",
        "anyOf": [step, {"type": "array", "items": step}, {"$ref": "#/$defs/Router"}],
    }
    route = {"$ref": "#/$defs/Route"}
    defs["PolicySpec"]["properties"]["routes"]["additionalProperties"] = route
    defs["Rule"]["properties"]["route"] = route
    defs["SplitArm"]["properties"]["route"] = route
    router = defs["Router"]["properties"]
    router["routes"] = {"anyOf": [{"type": "object", "additionalProperties": route}, {"type": "null"}]}
    router["split"] = {
        "anyOf": [
            {"type": "array", "items": {"$ref": "#/$defs/SplitArm"}},
            {"type": "object", "additionalProperties": {"type": "number"}, "description": "{model: weight}"},
            {"type": "null"},
        ]
    }
    schema["properties"]["tasks"] = {
        "anyOf": [
            schema["properties"]["tasks"],
            {"type": "string", "description": "path of a CSV task table, relative to the worksheet"},
        ]
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "routecalc worksheet"
    return schema


def _names_as_property_names(node: Any) -> Any:
    """Pydantic writes ``dict[Name, V]`` as ``patternProperties: {NAME_PATTERN: V}``, which lets any other key
    through; say it the way editors check it: ``propertyNames`` with the pattern, ``additionalProperties: V``."""
    if isinstance(node, list):
        return [_names_as_property_names(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _names_as_property_names(v) for k, v in node.items()}
    patterns = out.pop("patternProperties", None)
    if isinstance(patterns, dict) and len(patterns) == 1:
        ((pattern, value),) = patterns.items()
        out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
        out["additionalProperties"] = value
    elif patterns is not None:
        out["patternProperties"] = patterns
    return out
