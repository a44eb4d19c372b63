"""The worksheet's catalog: quantities (bands), latency, models, tools and classifiers."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from routecalc.worksheet.base import (
    MAX_SPREAD,
    Z95,
    Count,
    NonNegative,
    Positive,
    Probability,
    _Strict,
)
from routecalc.worksheet.names import LiteLLMModel, Name
from routecalc.worksheet.pricing import LongContext, PriceSource, batch_checks


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
