"""The worksheet schema: frozen, strict pydantic models of traffic, models and candidate policies.

Validation of the whole document (cross-section checks, every problem at once) lives in ``checks.py``;
reading files in ``load.py``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from routecalc.errors import InputError, PolicyError
from routecalc.limits import MAX_NUMBER
from routecalc.worksheet.names import FreeText, LiteLLMModel, Name

SCHEMA_VERSION = 1
DAYS_PER_MONTH = 365 / 12  # 30.4167: requests_per_day x this = requests per month
Z95 = 1.6448536269514722  # standard normal quantile at 0.95: sigma = ln(p95/p50) / Z95
MAX_SPREAD = 1000  # largest p95/p50 of a band (sigma 4.2): beyond it a typo is likelier than a distribution
MAX_CHAIN = 8  # longest chain a policy may have (a fallback loop is a known production failure)
DEFAULT_STATUS_CODES = (429, 500, 502, 503, 504)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, le=MAX_NUMBER)]
Positive = Annotated[float, Field(gt=0.0, le=MAX_NUMBER)]
Count = Annotated[int, Field(gt=0, le=int(MAX_NUMBER))]  # tokens, requests per minute, ...


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class Band(_Strict):
    """A per-request quantity: a fixed number, ``{mean: m}`` (fixed), or a lognormal ``{p50: a, p95: b}``."""

    p50: Positive | None = None
    p95: Positive | None = None
    mean: NonNegative | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"mean": data}
        return data

    @model_validator(mode="after")
    def _shape(self) -> Band:
        if self.mean is not None and (self.p50 is not None or self.p95 is not None):
            raise ValueError("give either mean or p50/p95, not both")
        if self.mean is None and (self.p50 is None or self.p95 is None):
            raise ValueError("give a number, {mean: m}, or both p50 and p95")
        if self.p50 is not None and self.p95 is not None and self.p95 < self.p50:
            raise ValueError(f"p95 ({self.p95:g}) is below p50 ({self.p50:g})")
        if self.p50 is not None and self.p95 is not None and self.p95 > MAX_SPREAD * self.p50:
            raise ValueError(
                f"p95 is more than {MAX_SPREAD:g} times p50 ({self.p95:g} vs {self.p50:g}): check the units"
            )
        return self

    @property
    def mu(self) -> float:
        """Log-scale location: ln(p50), or ln(mean) for a fixed value (-inf for 0)."""
        v = self.p50 if self.p50 is not None else self.mean
        return math.log(v) if v else -math.inf

    @property
    def sigma(self) -> float:
        """Log-scale spread: ln(p95/p50)/1.645, 0 for a fixed value."""
        if self.p50 is None or self.p95 is None:
            return 0.0
        return math.log(self.p95 / self.p50) / Z95

    @property
    def expected(self) -> float:
        """Mean of the distribution: p50 * exp(sigma^2/2) for a lognormal (not the p50)."""
        if self.mean is not None:
            return self.mean
        return float(self.p50) * math.exp(self.sigma**2 / 2)


class Latency(_Strict):
    """Latency of one successful answer: ``ttft_s + y * tpot_s``, or end-to-end ``e2e_s`` directly (seconds)."""

    ttft_s: Band | None = None
    tpot_s: Band | None = None
    e2e_s: Band | None = None

    @model_validator(mode="after")
    def _shape(self) -> Latency:
        if self.e2e_s is not None and (self.ttft_s is not None or self.tpot_s is not None):
            raise ValueError("give either e2e_s or ttft_s + tpot_s, not both")
        if self.e2e_s is None and (self.ttft_s is None or self.tpot_s is None):
            raise ValueError("give ttft_s and tpot_s (or e2e_s)")
        return self


class ModelSpec(_Strict):
    """One catalog entry. Prices are per ``price_unit`` tokens in the worksheet currency."""

    name: Name
    provider: Name
    litellm_model: LiteLLMModel | None = None
    price_in: NonNegative
    price_out: NonNegative
    price_cache: NonNegative | None = None
    latency: Latency
    failure_rate: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    timeout_share: Probability = 0.0
    timeout_s: Positive = 60.0
    error_latency_s: NonNegative = 0.5
    output_ratio: Positive = 1.0
    context_window: Count | None = None
    rpm: Count | None = None
    tpm: Count | None = None


class Validator(_Strict):
    """A quality gate: catches a bad answer with ``catch``, rejects a good one with ``false_reject``."""

    catch: Probability
    false_reject: Probability
    cost_per_call: NonNegative = 0.0
    cost_per_1m_tokens: NonNegative = 0.0
    latency_s: NonNegative = 0.0


class TaskSpec(_Strict):
    """One task category of the request mix."""

    name: Name
    traffic_share: NonNegative
    tokens_in: Band
    tokens_out: Band
    quality_threshold: Probability
    latency_budget_s: Positive | None = None
    pass_rates: dict[Name, Probability]
    validator: Validator | None = None
    cached_share: Probability = 0.0
    cost_bad_answer: NonNegative | None = None
    cost_failed: NonNegative | None = None
    last_reviewed: dt.date | None = None


StepTarget = Annotated[int, Field(ge=0)] | Literal["next", "fail", "deliver", "human_review"]


class StepSpec(_Strict):
    """One step of a chain. Targets are a later step's 0-based index or a keyword."""

    model: Name
    gate: bool | None = None
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    on_reject: StepTarget | None = None
    on_failure: StepTarget | None = None


class HumanReview(_Strict):
    """Where a last gate's reject goes when ``final_reject: human_review``: cost per request, latency."""

    cost: NonNegative
    latency_s: NonNegative


PolicyKind = Literal["static", "cascade", "fallback", "chain"]


class PolicySpec(_Strict):
    """A named routing policy: per category, a model (static) or an ordered chain of steps."""

    name: Name
    kind: PolicyKind
    routes: dict[Name, list[StepSpec]]
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    final_reject: Literal["deliver", "fail", "human_review"] = "deliver"
    human_review: HumanReview | None = None
    description: FreeText | None = None

    @model_validator(mode="before")
    @classmethod
    def _routes(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("routes"), dict):
            routes = {}
            for cat, route in data["routes"].items():
                steps = [route] if isinstance(route, str | dict) else route
                if isinstance(steps, list):
                    steps = [{"model": s} if isinstance(s, str) else s for s in steps]
                routes[cat] = steps
            data = {**data, "routes": routes}
        return data


def step_gated(policy: PolicySpec, step: StepSpec, index: int, n_steps: int) -> bool:
    """Whether a step runs the category's quality gate.

    Cascades gate every step except, when ``final_reject`` is ``deliver``, the last one (its verdict could not
    change what is delivered, so nobody pays for it); fallback and static steps are ungated; chains say so.
    """
    if policy.kind == "chain":
        return bool(step.gate)
    if policy.kind != "cascade":
        return False
    return index < n_steps - 1 or policy.final_reject != "deliver"


class Volume(_Strict):
    """Traffic volume: exactly one of requests per month or per day (month = 365/12 days)."""

    requests_per_month: NonNegative | None = None
    requests_per_day: NonNegative | None = None

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
    models: Annotated[list[ModelSpec], Field(min_length=1)]
    tasks: Annotated[list[TaskSpec], Field(min_length=1)]
    policies: list[PolicySpec] = []
    baseline: Name | None = None

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
    step = {"anyOf": [{"type": "string", "description": "a model name"}, {"$ref": "#/$defs/StepSpec"}]}
    defs["PolicySpec"]["properties"]["routes"]["additionalProperties"] = {
        "anyOf": [step, {"type": "array", "items": step}]
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
