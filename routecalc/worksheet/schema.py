"""The worksheet schema: frozen, strict pydantic models of traffic, models and candidate policies.

Validation of the whole document (cross-section checks, every problem at once) lives in ``checks.py``;
reading files in ``load.py``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, model_serializer, model_validator

from routecalc.errors import InputError, PolicyError
from routecalc.limits import MAX_NUMBER, short_repr
from routecalc.worksheet.base import STRICT, Count, NonNegative, Positive, Probability
from routecalc.worksheet.names import FreeText, LiteLLMModel, Name
from routecalc.worksheet.pricing import Discount, LongContext, PricesFrom, PriceSource, batch_checks

SCHEMA_VERSION = 1
DAYS_PER_MONTH = 365 / 12  # 30.4167: requests_per_day x this = requests per month
Z95 = 1.6448536269514722  # standard normal quantile at 0.95: sigma = ln(p95/p50) / Z95
MAX_SPREAD = 1000  # largest p95/p50 of a band (sigma 4.2): beyond it a typo is likelier than a distribution
MAX_CHAIN = 8  # longest chain a policy may have (a fallback loop is a known production failure)
DEFAULT_STATUS_CODES = (429, 500, 502, 503, 504)


class _Strict(BaseModel):
    model_config = STRICT


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
    """One catalog entry. Prices are per ``price_unit`` tokens in the worksheet currency; cache, batch, reasoning
    and long-context prices: :mod:`routecalc.worksheet.pricing`."""

    name: Name
    provider: Name
    litellm_model: LiteLLMModel | None = None
    eval_name: Name | None = None  # this model's name in eval files (calibrate)
    price_in: NonNegative
    price_out: NonNegative
    price_cache: NonNegative | None = None  # prompt-cache read
    price_cache_write: NonNegative | None = None  # prompt-cache write (default: price_in)
    price_reasoning: NonNegative | None = None  # hidden reasoning tokens (default: price_out)
    reasoning_ratio: NonNegative = 0.0  # reasoning tokens per visible output token
    price_in_batch: NonNegative | None = None  # batch API
    price_out_batch: NonNegative | None = None
    long_context: LongContext | None = None  # prices above a prompt length
    price_source: PriceSource | None = None  # manual: prices update leaves this model's prices alone
    latency: Latency
    failure_rate: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    timeout_share: Probability = 0.0
    timeout_s: Positive = 60.0
    error_latency_s: NonNegative = 0.5
    output_ratio: Positive = 1.0
    context_window: Count | None = None
    rpm: Count | None = None
    tpm: Count | None = None
    errors: dict[ErrorType, Probability] | None = None

    @model_validator(mode="before")
    @classmethod
    def _error_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("errors"), dict):
            data = {**data, "errors": {_error_key(k): v for k, v in data["errors"].items()}}
        return data

    @model_validator(mode="after")
    def _batch(self) -> ModelSpec:
        batch_checks(self)
        return self

    @model_validator(mode="after")
    def _errors(self) -> ModelSpec:
        if self.errors is None:
            return self
        if abs(sum(self.errors.values()) - 1.0) > 1e-6:
            raise ValueError("errors: shares of the failure rate by type must sum to 1")
        if (
            "timeout_share" in self.model_fields_set
            and abs(self.errors.get("timeout", 0.0) - self.timeout_share) > 1e-9
        ):
            raise ValueError("give the timeout share once: errors.timeout or timeout_share")
        return self

    @property
    def error_shares(self) -> dict[str, float]:
        """Share of this model's failures by type (default: ``timeout_share`` timeouts, the rest 5xx)."""
        if self.errors is not None:
            return {t: float(self.errors.get(t, 0.0)) for t in ERROR_TYPES}  # type: ignore[call-overload]
        return {"timeout": self.timeout_share, "5xx": 1.0 - self.timeout_share, "429": 0.0, "content_filter": 0.0}


ERROR_TYPES = ("timeout", "5xx", "429", "content_filter")  # content_filter is not retried: it would fail again
ErrorType = Literal["timeout", "5xx", "429", "content_filter"]


def _error_key(key: Any) -> Any:
    """YAML reads ``429:`` and ``500:`` as integers: accept them, and 5xx codes, as the error type's name."""
    if isinstance(key, int) and not isinstance(key, bool):
        return "429" if key == 429 else "5xx" if 500 <= key <= 599 else str(key)
    return key


class ToolSpec(_Strict):
    """A non-LLM step (search, database lookup, rules engine, cache): answers some requests, cheaply.

    Which share of a category's requests it answers is the task's ``tool_hit_rates``; a miss goes on to the
    next step. ``cost_per_call`` in the worksheet currency; latency in seconds (a number or ``{p50, p95}``).
    """

    name: Name
    cost_per_call: NonNegative = 0.0
    latency_s: Band
    failure_rate: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    error_latency_s: NonNegative = 0.1


class ClassifierSpec(_Strict):
    """A router that predicts a request's tier before routing (an embedding model, a small LLM, ...).

    ``confusion[true][predicted]`` (rows sum to 1), or ``recall`` per label (the rest of each row spread
    evenly over the other labels). Its cost: ``cost_per_call``, or ``model`` (a catalog model reading the
    request's input tokens and writing ``output_tokens``); its latency ``latency_s``.
    """

    name: Name
    labels: Annotated[list[Name], Field(min_length=2)]
    confusion: dict[Name, dict[Name, Probability]] | None = None
    recall: dict[Name, Probability] | None = None
    cost_per_call: NonNegative = 0.0
    model: str | None = None
    output_tokens: NonNegative = 5.0
    latency_s: Band = Band(mean=0.0)

    @model_validator(mode="after")
    def _matrix(self) -> ClassifierSpec:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels: a label is listed twice")
        if (self.confusion is None) == (self.recall is None):
            raise ValueError("give exactly one of confusion, recall")
        given = self.confusion if self.confusion is not None else self.recall
        assert given is not None
        extra = sorted(set(given) - set(self.labels))
        if extra or set(given) != set(self.labels):
            raise ValueError(f"give every label exactly once (labels: {', '.join(self.labels)})")
        if self.confusion is not None:
            for true, row in self.confusion.items():
                if set(row) - set(self.labels):
                    raise ValueError(
                        f"confusion.{true}: unknown predicted label(s) {sorted(set(row) - set(self.labels))}"
                    )
                if abs(sum(row.values()) - 1.0) > 1e-6:
                    raise ValueError(f"confusion.{true}: a row of predictions must sum to 1")
        return self

    def matrix(self) -> list[list[float]]:
        """``P(predicted = j | true = i)`` over ``labels``."""
        n = len(self.labels)
        if self.confusion is not None:
            return [[self.confusion[t].get(p, 0.0) for p in self.labels] for t in self.labels]
        recall = self.recall or {}
        return [[recall[t] if t == p else (1 - recall[t]) / (n - 1) for p in self.labels] for t in self.labels]


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
                    f"{{{cls.count_key}: k, of: n}} needs two whole numbers (got {short_repr(k)}, {short_repr(n)})"
                )
            if n <= 0 or not 0 <= k <= n:
                raise ValueError(f"{cls.count_key} must be between 0 and of, and of > 0 (got {k} of {n})")
            return {"rate": k / n, "k": k, "n": n}
        if isinstance(data, dict):
            raise ValueError(f"give a number or {{{cls.count_key}: k, of: n}}")
        return data

    @model_serializer(mode="plain")
    def _as_written(self) -> float | dict[str, int]:
        """Dump as a worksheet says it (a number, or ``{<k>: passed, of: n}``), so a dump validates again."""
        if self.n is None:
            return self.rate
        return {self.count_key: self.k, "of": self.n}  # type: ignore[dict-item]

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


class Validator(_Strict):
    """A quality gate: catches a bad answer with ``catch``, rejects a good one with ``false_reject``."""

    catch: CatchRate
    false_reject: FalseRejectRate
    cost_per_call: NonNegative = 0.0
    cost_per_1m_tokens: NonNegative = 0.0
    latency_s: NonNegative = 0.0


class Pattern(_Strict):
    """One row of an outcome table: the models of ``outcomes.models`` that pass (the others fail), and how often."""

    passed: list[Name]
    count: Annotated[int, Field(ge=0)] | None = None
    p: Probability | None = None

    @model_validator(mode="after")
    def _one(self) -> Pattern:
        if (self.count is None) == (self.p is None):
            raise ValueError("give exactly one of count, p")
        return self


class Conditional(_Strict):
    """Shorthand for a two-model table: ``model`` passes ``pass_rate`` of the requests ``given_failed`` failed."""

    model: Name
    given_failed: Name
    pass_rate: PassRate


MAX_CORRELATION = 0.999  # rho -> 1 makes the latent-difficulty integral a step function


class Outcomes(_Strict):
    """The joint law of pass/fail across models in a category (default: independent).

    ``correlation``: one-factor latent difficulty (Gaussian copula), 0 = independent; or an explicit table
    ``models`` + ``patterns`` (counts or probabilities of each pass/fail pattern, as ``calibrate`` writes it); or
    ``conditional``: one model's pass rate on the requests another failed.
    """

    correlation: Annotated[float, Field(ge=0.0, le=MAX_CORRELATION)] | None = None
    models: list[Name] | None = None
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
                raise ValueError(f"patterns[{i}].passed names {short_repr(unknown[0])}, not in outcomes.models")
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


class Tier(_Strict):
    """A request difficulty class within a category: its share of the category and its pass rates."""

    share: Probability
    pass_rates: dict[Name, PassRate]


class ToolHit(_Strict):
    """How often a tool answers a category's requests (``rate``) and how often those answers are right."""

    rate: Probability
    quality: Probability = 1.0

    @model_validator(mode="before")
    @classmethod
    def _number(cls, data: Any) -> Any:
        return {"rate": data} if isinstance(data, int | float) and not isinstance(data, bool) else data


class Constraints(_Strict):
    """What ``routecalc optimize`` may choose, per category (or worksheet-wide, as the default for every category).

    Models: ``allowed_models`` (only these; default every model with a pass rate) minus ``forbidden_models``.
    Money per request in the worksheet currency, or per 1,000 tokens (the category's mean input + output
    tokens); ``max_escalation`` caps the share of requests a gate rejects at least once. All are compared with
    expected values. The category's quality threshold and P95 latency budget apply as well.
    """

    allowed_models: list[Name] | None = None
    forbidden_models: list[Name] = []
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

    name: Name
    traffic_share: NonNegative
    tokens_in: Band
    tokens_out: Band
    quality_threshold: Probability
    latency_budget_s: Positive | None = None
    pass_rates: dict[Name, PassRate] = {}
    outcomes: Outcomes | None = None
    validator: Validator | None = None
    cached_share: Probability = 0.0  # share of input tokens read from the prompt cache
    cache_write_share: Probability = 0.0  # share of input tokens written to it
    batch_share: Probability = 0.0  # share of requests sent through a batch API
    reasoning_ratio: dict[Name, NonNegative] = {}  # per model: overrides the model's reasoning_ratio here
    cost_bad_answer: NonNegative | None = None
    cost_failed: NonNegative | None = None
    last_reviewed: dt.date | None = None
    tiers: dict[Name, Tier] | None = None
    attributes: dict[Name, dict[Name, Probability]] | None = None
    tool_hit_rates: dict[Name, ToolHit] = {}
    context_overflow: Literal["next", "fail"] | None = None
    constraints: Constraints | None = None

    @model_validator(mode="after")
    def _cache(self) -> TaskSpec:
        if self.cached_share + self.cache_write_share > 1 + 1e-9:
            raise ValueError("cached_share + cache_write_share exceed 1 (shares of the same input tokens)")
        return self

    @model_validator(mode="after")
    def _tiers_and_attributes(self) -> TaskSpec:
        if self.tiers is not None:
            if abs(sum(t.share for t in self.tiers.values()) - 1.0) > 1e-6:
                raise ValueError("tiers: shares must sum to 1")
            if self.pass_rates:
                raise ValueError("with tiers, give pass rates per tier (tiers.<tier>.pass_rates), not pass_rates")
            if self.outcomes is not None and self.outcomes.correlation is None:
                raise ValueError("with tiers, outcomes may only give a correlation (it applies within each tier)")
            models = {frozenset(t.pass_rates) for t in self.tiers.values()}
            if len(models) != 1:
                raise ValueError("tiers: give pass rates for the same models in every tier")
        for name, values in (self.attributes or {}).items():
            if not values:
                raise ValueError(f"attributes.{name}: list its values with their shares")
            if abs(sum(values.values()) - 1.0) > 1e-6:
                raise ValueError(f"attributes.{name}: shares must sum to 1")
        return self

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
        """Every model's pass rate as a number: the written ones, the tiers' mixture, or an outcome table's."""
        if self.tiers is not None:
            tiers = list(self.tiers.values())
            return {m: sum(t.share * t.pass_rates[m].rate for t in tiers) for m in tiers[0].pass_rates}
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

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("on_failure"), dict):
            data = {**data, "on_failure": {_error_key(k): v for k, v in data["on_failure"].items()}}
        return data

    @model_validator(mode="after")
    def _one(self) -> StepSpec:
        given = [k for k in ("model", "tool", "hedge") if getattr(self, k) is not None]
        if len(given) != 1:
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


def _route_shorthand(route: Any) -> Any:
    """A model name, one step, or a list of names/steps -> a list of step dicts; routers recurse."""
    if isinstance(route, str):
        return [{"model": route}]
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
        return [{"model": s} if isinstance(s, str) else s for s in route]
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
