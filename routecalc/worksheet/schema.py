"""The worksheet schema: frozen, strict pydantic models of traffic, models and candidate policies.

Validation of the whole document (cross-section checks, every problem at once) lives in ``checks.py``;
reading files in ``load.py``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from routecalc.errors import InputError, PolicyError

SCHEMA_VERSION = 1
DAYS_PER_MONTH = 365 / 12  # 30.4167: requests_per_day x this = requests per month
Z95 = 1.6448536269514722  # standard normal quantile at 0.95: sigma = ln(p95/p50) / Z95
MAX_SPREAD = 1000  # largest p95/p50 of a band (sigma 4.2): beyond it a typo is likelier than a distribution
MAX_CHAIN = 8  # longest chain a policy may have (a fallback loop is a known production failure)
DEFAULT_STATUS_CODES = (429, 500, 502, 503, 504)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]


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

    name: Annotated[str, Field(min_length=1)]
    provider: Annotated[str, Field(min_length=1)]
    litellm_model: str | None = None
    price_in: NonNegative
    price_out: NonNegative
    price_cache: NonNegative | None = None
    latency: Latency
    failure_rate: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    timeout_share: Probability = 0.0
    timeout_s: Positive = 60.0
    error_latency_s: NonNegative = 0.5
    output_ratio: Positive = 1.0
    context_window: Annotated[int, Field(gt=0)] | None = None
    rpm: Annotated[int, Field(gt=0)] | None = None
    tpm: Annotated[int, Field(gt=0)] | None = None


class Rate(_Strict):
    """A probability, optionally with the eval counts behind it: a number, or ``{<k>: passed, of: n}``.

    ``rate`` is ``k / n`` when counts are given; the counts make it a Beta(1 + k, 1 + n - k) posterior for
    ``--uncertainty``. Subclasses name the count key (``passed``, ``caught``, ``rejected``).
    """

    count_key: ClassVar[str] = "k"
    rate: Probability
    k: Annotated[int, Field(ge=0)] | None = None
    n: Annotated[int, Field(gt=0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"rate": data}
        if isinstance(data, dict) and "rate" not in data and (cls.count_key in data or "of" in data):
            extra = sorted(str(key) for key in data if key not in (cls.count_key, "of"))
            if extra:
                raise ValueError(f"unknown key(s) {', '.join(extra)}: give a number or {{{cls.count_key}: k, of: n}}")
            k, n = data.get(cls.count_key), data.get("of")
            if not (_is_int(k) and _is_int(n)):
                raise ValueError(
                    f"{{{cls.count_key}: k, of: n}} needs two whole numbers (got {_short(k)}, {_short(n)})"
                )
            if n <= 0 or not 0 <= k <= n:
                raise ValueError(f"{cls.count_key} must be between 0 and of, and of > 0 (got {k} of {n})")
            return {"rate": k / n, "k": k, "n": n}
        if isinstance(data, dict):
            raise ValueError(f"give a number or {{{cls.count_key}: k, of: n}}")
        return data

    @property
    def counted(self) -> bool:
        return self.n is not None


class PassRate(Rate):
    """A model's pass rate on a category: ``0.93`` or ``{passed: 930, of: 1000}``."""

    count_key: ClassVar[str] = "passed"


class CatchRate(Rate):
    """A validator's catch rate: ``0.85`` or ``{caught: 85, of: 100}`` (bad answers caught of bad answers seen)."""

    count_key: ClassVar[str] = "caught"


class FalseRejectRate(Rate):
    """A validator's false-reject rate: ``0.03`` or ``{rejected: 3, of: 100}`` (good answers rejected of seen)."""

    count_key: ClassVar[str] = "rejected"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Validator(_Strict):
    """A quality gate: catches a bad answer with ``catch``, rejects a good one with ``false_reject``."""

    catch: CatchRate
    false_reject: FalseRejectRate
    cost_per_call: NonNegative = 0.0
    cost_per_1m_tokens: NonNegative = 0.0
    latency_s: NonNegative = 0.0


class Pattern(_Strict):
    """One row of an outcome table: the models of ``outcomes.models`` that pass (the others fail), and how often."""

    passed: list[Annotated[str, Field(min_length=1)]]
    count: Annotated[int, Field(ge=0)] | None = None
    p: Probability | None = None

    @model_validator(mode="after")
    def _one(self) -> Pattern:
        if (self.count is None) == (self.p is None):
            raise ValueError("give exactly one of count, p")
        return self


class Conditional(_Strict):
    """Shorthand for a two-model table: ``model`` passes ``pass_rate`` of the requests ``given_failed`` failed."""

    model: Annotated[str, Field(min_length=1)]
    given_failed: Annotated[str, Field(min_length=1)]
    pass_rate: PassRate


MAX_CORRELATION = 0.999  # rho -> 1 makes the latent-difficulty integral a step function


class Outcomes(_Strict):
    """The joint law of pass/fail across models in a category (default: independent).

    ``correlation``: one-factor latent difficulty (Gaussian copula), 0 = independent; or an explicit table
    ``models`` + ``patterns`` (counts or probabilities of each pass/fail pattern, as ``calibrate`` writes it); or
    ``conditional``: one model's pass rate on the requests another failed.
    """

    correlation: Annotated[float, Field(ge=0.0, le=MAX_CORRELATION)] | None = None
    models: list[Annotated[str, Field(min_length=1)]] | None = None
    patterns: list[Pattern] | None = None
    conditional: Conditional | None = None

    @model_validator(mode="after")
    def _shape(self) -> Outcomes:
        given = [k for k in ("correlation", "patterns", "conditional") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of correlation, patterns (with models), conditional")
        if (self.models is not None) != (self.patterns is not None):
            raise ValueError("an outcome table needs both models and patterns")
        if self.patterns is not None:
            self._check_table()
        return self

    def _check_table(self) -> None:
        models = self.models or []
        if len(set(models)) != len(models):
            raise ValueError("outcomes.models lists a model twice")
        if len(models) > MAX_TABLE_MODELS:
            raise ValueError(f"an outcome table covers at most {MAX_TABLE_MODELS} models")
        known = set(models)
        seen: set[frozenset[str]] = set()
        for i, pat in enumerate(self.patterns or []):
            unknown = [m for m in pat.passed if m not in known]
            if unknown:
                raise ValueError(f"patterns[{i}].passed names {_short(unknown[0])}, not in outcomes.models")
            key = frozenset(pat.passed)
            if key in seen or len(key) != len(pat.passed):
                raise ValueError(f"patterns[{i}] repeats a pattern (or a model within it)")
            seen.add(key)
        counts = [p.count for p in self.patterns or []]
        if any(c is None for c in counts) and any(c is not None for c in counts):
            raise ValueError("give every pattern a count, or every pattern a probability p, not a mix")
        if all(c is not None for c in counts):
            if sum(counts) <= 0:  # type: ignore[arg-type]
                raise ValueError("pattern counts sum to 0")
        elif abs(sum(p.p or 0.0 for p in self.patterns or []) - 1.0) > 1e-6:
            raise ValueError("pattern probabilities must sum to 1")

    @property
    def counted(self) -> bool:
        return self.patterns is not None and all(p.count is not None for p in self.patterns)

    def table(self) -> tuple[list[str], list[frozenset[str]], list[float]]:
        """(models, passing set of each pattern, probability of each pattern) of a table."""
        pats = self.patterns or []
        weights = [float(p.count) if p.count is not None else float(p.p or 0.0) for p in pats]
        total = sum(weights)
        return list(self.models or []), [frozenset(p.passed) for p in pats], [w / total for w in weights]

    def marginals(self) -> dict[str, float]:
        """Each table model's pass rate implied by the table."""
        models, sets, probs = self.table()
        return {m: sum(p for s, p in zip(sets, probs, strict=True) if m in s) for m in models}


MAX_TABLE_MODELS = 12  # 2^12 patterns at most
TABLE_RATE_TOLERANCE = 5e-4  # a pass rate written beside a table may be rounded to 0.1 %


class Constraints(_Strict):
    """What ``routecalc optimize`` may choose, per category (or worksheet-wide, as the default for every category).

    Models: ``allowed_models`` (only these; default every model with a pass rate) minus ``forbidden_models``.
    Money per request in the worksheet currency, or per 1,000 tokens (the category's mean input + output
    tokens); ``max_escalation`` caps the share of requests a gate rejects at least once. All are compared with
    expected values. The category's quality threshold and P95 latency budget apply as well.
    """

    allowed_models: list[Annotated[str, Field(min_length=1)]] | None = None
    forbidden_models: list[Annotated[str, Field(min_length=1)]] = []
    max_cost_per_request: NonNegative | None = None
    max_cost_per_1k_tokens: NonNegative | None = None
    max_escalation: Probability | None = None

    @model_validator(mode="after")
    def _overlap(self) -> Constraints:
        both = sorted(set(self.allowed_models or []) & set(self.forbidden_models))
        if both:
            raise ValueError(f"{', '.join(both)} both allowed and forbidden")
        return self


class TaskSpec(_Strict):
    """One task category of the request mix."""

    name: Annotated[str, Field(min_length=1)]
    traffic_share: NonNegative
    tokens_in: Band
    tokens_out: Band
    quality_threshold: Probability
    latency_budget_s: Positive | None = None
    pass_rates: dict[str, PassRate] = {}
    outcomes: Outcomes | None = None
    validator: Validator | None = None
    cached_share: Probability = 0.0
    cost_bad_answer: NonNegative | None = None
    cost_failed: NonNegative | None = None
    last_reviewed: dt.date | None = None
    constraints: Constraints | None = None

    @model_validator(mode="after")
    def _outcomes(self) -> TaskSpec:
        o = self.outcomes
        if o is None:
            return self
        if o.patterns is not None:
            for m, q in o.marginals().items():
                given = self.pass_rates.get(m)
                if given is not None and abs(given.rate - q) > TABLE_RATE_TOLERANCE:
                    raise ValueError(
                        f"pass_rates.{m} ({given.rate:.4f}) disagrees with the outcome table's {q:.4f}; "
                        "drop it (the table defines it) or fix one of them"
                    )
        if o.conditional is not None:
            c = o.conditional
            if c.model == c.given_failed:
                raise ValueError("outcomes.conditional: model and given_failed must differ")
            missing = [m for m in (c.model, c.given_failed) if m not in self.pass_rates]
            if missing:
                raise ValueError(f"outcomes.conditional needs pass_rates for {', '.join(missing)}")
            lo, hi = conditional_range(self.pass_rates[c.given_failed].rate, self.pass_rates[c.model].rate)
            if not lo - 1e-9 <= c.pass_rate.rate <= hi + 1e-9:
                raise ValueError(
                    f"outcomes.conditional: with pass rates {self.pass_rates[c.given_failed].rate:g} "
                    f"({c.given_failed}) and {self.pass_rates[c.model].rate:g} ({c.model}), {c.model}'s pass rate "
                    f"on what {c.given_failed} failed must lie in [{lo:.4f}, {hi:.4f}] (got {c.pass_rate.rate:g})"
                )
        return self

    @property
    def rates(self) -> dict[str, float]:
        """Every model's pass rate as a number: the written ones, then those an outcome table implies."""
        out = {m: r.rate for m, r in self.pass_rates.items()}
        if self.outcomes is not None and self.outcomes.patterns is not None:
            out.update(self.outcomes.marginals())
        return out


def conditional_range(q_first: float, q_second: float) -> tuple[float, float]:
    """Feasible pass rates of a second model on the requests a first one failed, given both marginals.

    With ``c`` that rate, the table is ``P(first fails, second passes) = (1 - q1) c`` and
    ``P(both pass) = q2 - (1 - q1) c``; both must be probabilities, and ``P(first passes, second fails)``
    ``= q1 - q2 + (1 - q1) c >= 0``.
    """
    if q_first >= 1.0:
        return 0.0, 1.0  # the first never fails: any rate describes the same (empty) set
    lo = max(0.0, (q_second - q_first) / (1 - q_first))
    hi = min(1.0, q_second / (1 - q_first))
    return lo, hi


StepTarget = Annotated[int, Field(ge=0)] | Literal["next", "fail", "deliver", "human_review"]


class StepSpec(_Strict):
    """One step of a chain. Targets are a later step's 0-based index or a keyword."""

    model: Annotated[str, Field(min_length=1)]
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

    name: Annotated[str, Field(min_length=1)]
    kind: PolicyKind
    routes: dict[str, list[StepSpec]]
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    final_reject: Literal["deliver", "fail", "human_review"] = "deliver"
    human_review: HumanReview | None = None
    description: str | None = None

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
    allowed_fails: Annotated[int, Field(ge=0)] | None = None
    cooldown_s: NonNegative | None = None
    on_status_codes: list[Annotated[int, Field(ge=100, le=599)]] = list(DEFAULT_STATUS_CODES)


class Worksheet(_Strict):
    """A whole worksheet, validated. See README "Worksheet format" for an annotated example."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    price_unit: Literal["per_1m", "per_1k"] = "per_1m"
    share_unit: Literal["fraction", "percent"] = "fraction"
    volume: Volume
    defaults: Defaults = Defaults()
    models: Annotated[list[ModelSpec], Field(min_length=1)]
    tasks: Annotated[list[TaskSpec], Field(min_length=1)]
    constraints: Constraints | None = None
    policies: list[PolicySpec] = []
    baseline: str | None = None

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
    schema = Worksheet.model_json_schema()
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
