"""The worksheet's task categories: pass rates with their counts, validators, joint outcome laws, tiers, tool hits
and constraints."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_serializer, model_validator

from routecalc.limits import short_repr
from routecalc.worksheet.base import (
    NonNegative,
    Positive,
    Probability,
    _Strict,
)
from routecalc.worksheet.catalog import Band
from routecalc.worksheet.names import Name


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
