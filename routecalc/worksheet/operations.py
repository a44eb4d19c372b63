"""The worksheet's ``operations:`` section: what happens over time (``routecalc simulate``).

Budget pacing, provider outages, a circuit breaker per model, what a rate limit does at peak, and load-adaptive
routing. Rate limits themselves stay on the models (``models[].rpm`` / ``tpm``, which the LiteLLM export already
writes); the breaker's defaults are ``defaults.allowed_fails`` / ``cooldown_s`` (LiteLLM's cooldown). Traffic over
time is ``volume.profile``. The time engine (:mod:`routecalc.engine.timeline`) reads these through
:func:`routecalc.engine.timeline.compile_operations`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from routecalc.errors import Problem
from routecalc.worksheet.schema import Band, Positive, _Strict


class Budget(_Strict):
    """A spend budget and the downgrade rule that paces it.

    When spend since the start of the period passes ``downgrade_above`` x the pro-rated budget, the named
    ``categories`` take ``policy``'s routes; when it falls back under ``resume_below`` x the pro-rated budget they
    return. Checked every ``check_every_min`` minutes. Pro-rated: ``linear`` in time, or following the ``profile``'s
    hourly and weekly shape (growth and spike days are not expected, so they count against the pace).
    """

    monthly: Positive | None = None
    daily: Positive | None = None
    downgrade_above: Annotated[float, Field(gt=0.0, le=10.0)] = 0.9
    resume_below: Annotated[float, Field(gt=0.0, le=10.0)] | None = None  # default: downgrade_above
    pace: Literal["linear", "profile"] = "linear"
    check_every_min: Annotated[float, Field(gt=0.0, le=1440.0)] = 5.0
    categories: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    policy: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _shape(self) -> Budget:
        if (self.monthly is None) == (self.daily is None):
            raise ValueError("give exactly one of monthly, daily")
        if self.resume_below is not None and self.resume_below > self.downgrade_above:
            raise ValueError(
                f"resume_below ({self.resume_below:g}) is above downgrade_above ({self.downgrade_above:g})"
            )
        return self

    @property
    def resume(self) -> float:
        return self.downgrade_above if self.resume_below is None else self.resume_below


class Outage(_Strict):
    """Provider outages: a provider (every model it serves) or one model is down; every try fails with ``error``.

    Either random (``incidents_per_month``, start times uniform over the simulated days) or scheduled (``day``
    of the simulation, 1 = the first, and ``start_hour``). ``duration_min``: minutes, fixed or ``{p50, p95}``
    (lognormal, drawn per incident).
    """

    provider: Annotated[str, Field(min_length=1)] | None = None
    model: Annotated[str, Field(min_length=1)] | None = None
    incidents_per_month: Positive | None = None
    day: Annotated[int, Field(ge=1, le=366)] | None = None
    start_hour: Annotated[float, Field(ge=0.0, lt=24.0)] | None = None
    duration_min: Band
    error: Literal["timeout", "5xx", "429"] = "timeout"

    @model_validator(mode="after")
    def _shape(self) -> Outage:
        if (self.provider is None) == (self.model is None):
            raise ValueError("give exactly one of provider, model")
        if (self.incidents_per_month is None) == (self.day is None):
            raise ValueError("give incidents_per_month (random outages) or day (a scheduled one), not both")
        if self.start_hour is not None and self.day is None:
            raise ValueError("start_hour needs day")
        if self.duration_min.expected <= 0:
            raise ValueError("duration_min must be positive")
        return self


class Breaker(_Strict):
    """A circuit breaker per model: open after ``allowed_fails`` failed tries within a ``window_s`` window (clock
    aligned, as LiteLLM counts failures per minute); while open the model is skipped, straight to the step's
    fallback; after ``cooldown_s``, ``probe``: the next request is let through and closes the breaker if the model
    answers, reopens it if not; ``reset``: closed again with a fresh count (LiteLLM's cooldown)."""

    allowed_fails: Annotated[int, Field(ge=1)] | None = None  # default: defaults.allowed_fails
    window_s: Positive = 60.0
    cooldown_s: Positive | None = None  # default: defaults.cooldown_s
    after_cooldown: Literal["probe", "reset"] = "probe"
    models: list[Annotated[str, Field(min_length=1)]] | None = None  # default: every model


class RateLimits(_Strict):
    """What a model's ``rpm`` / ``tpm`` (on the model) does at peak: ``spill`` the excess to the step's next target
    (as a 429 the router sees before calling), or ``queue`` it until the next minute with room (added latency)."""

    on_limit: Literal["spill", "queue"] = "spill"


class LoadRouting(_Strict):
    """Above ``above_rpm`` requests per minute (all categories, measured over the previous minute), the named
    ``categories`` take ``policy``'s routes (e.g. faster models at peak)."""

    above_rpm: Positive
    categories: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    policy: Annotated[str, Field(min_length=1)]


class Operations(_Strict):
    """Time effects for ``routecalc simulate``; every part optional."""

    budget: Budget | None = None
    outages: list[Outage] = Field(default_factory=list)
    breaker: Breaker | None = None
    rate_limits: RateLimits | None = None
    load_routing: LoadRouting | None = None


def _names(data: Mapping[str, Any], key: str, field: str = "name") -> dict[str, None] | None:
    items = data.get(key)
    if not isinstance(items, list):
        return None  # the section itself is broken (reported elsewhere): do not report every reference
    return {i[field]: None for i in items if isinstance(i, dict) and isinstance(i.get(field), str)}


def _valid(cls: type[_Strict], value: Any) -> Any:
    """``value`` validated as ``cls``, or None (its problems are reported by the schema validation, with paths)."""
    try:
        return cls.model_validate(value) if isinstance(value, dict) else None
    except ValidationError:
        return None


def operations_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Names in ``operations`` that refer to nothing, and settings that need the rest of the worksheet.

    Each part is validated on its own first, so a broken part does not hide the problems of the others.
    """
    ops = data.get("operations")
    if not isinstance(ops, dict):
        return []
    tasks, policies = _names(data, "tasks"), _names(data, "policies")
    models, providers = _names(data, "models"), _names(data, "models", "provider")
    base = "operations"
    problems: list[Problem] = []
    for key, cls in (("budget", Budget), ("load_routing", LoadRouting)):
        part = _valid(cls, ops.get(key))
        if part is None:
            continue
        for i, cat in enumerate(part.categories):
            if tasks is not None and cat not in tasks:
                problems.append(Problem(f"{base}.{key}.categories[{i}]", f"unknown category {cat!r}"))
        if len(set(part.categories)) != len(part.categories):
            problems.append(Problem(f"{base}.{key}.categories", "a category is named twice"))
        if policies is not None and part.policy not in policies:
            problems.append(Problem(f"{base}.{key}.policy", f"unknown policy {part.policy!r}"))
    outages = ops.get("outages") if isinstance(ops.get("outages"), list) else []
    for i, item in enumerate(outages):
        o = _valid(Outage, item)
        if o is None:
            continue
        if o.model is not None and models is not None and o.model not in models:
            problems.append(Problem(f"{base}.outages[{i}].model", f"unknown model {o.model!r}"))
        if o.provider is not None and providers is not None and o.provider not in providers:
            known = ", ".join(sorted(providers)) or "none"
            problems.append(
                Problem(f"{base}.outages[{i}].provider", f"no model is served by {o.provider!r} (providers: {known})")
            )
    breaker = _valid(Breaker, ops.get("breaker"))
    if breaker is not None:
        defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
        for field in ("allowed_fails", "cooldown_s"):
            if getattr(breaker, field) is None and defaults.get(field) is None:
                problems.append(Problem(f"{base}.breaker.{field}", f"give it here or in defaults.{field}"))
        if breaker.allowed_fails is None and defaults.get("allowed_fails") == 0:
            problems.append(Problem(f"{base}.breaker.allowed_fails", "defaults.allowed_fails is 0: give at least 1"))
        for j, m in enumerate(breaker.models or []):
            if models is not None and m not in models:
                problems.append(Problem(f"{base}.breaker.models[{j}]", f"unknown model {m!r}"))
    limits = _valid(RateLimits, ops.get("rate_limits"))
    catalog = data.get("models") if isinstance(data.get("models"), list) else None
    limited = catalog is None or any(isinstance(m, dict) and (m.get("rpm") or m.get("tpm")) for m in catalog)
    if limits is not None and not limited:
        problems.append(Problem(f"{base}.rate_limits", "no model has rpm or tpm: give models[..].rpm / tpm"))
    return problems
