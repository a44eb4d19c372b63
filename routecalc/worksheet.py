"""The worksheet: the user's description of traffic, models and candidate policies.

Loading is strict (``yaml.safe_load`` with duplicate keys refused, pydantic v2 in strict mode, unknown keys
refused) and reports *every* problem at once with a field path such as ``tasks[3].traffic_share``. The result
is a tree of frozen pydantic models; nothing downstream mutates it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from routecalc.errors import InputError, PolicyError, Problem, WorksheetError

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


class Validator(_Strict):
    """A quality gate: catches a bad answer with ``catch``, rejects a good one with ``false_reject``."""

    catch: Probability
    false_reject: Probability
    cost_per_call: NonNegative = 0.0
    cost_per_1m_tokens: NonNegative = 0.0
    latency_s: NonNegative = 0.0


class TaskSpec(_Strict):
    """One task category of the request mix."""

    name: Annotated[str, Field(min_length=1)]
    traffic_share: NonNegative
    tokens_in: Band
    tokens_out: Band
    quality_threshold: Probability
    latency_budget_s: Positive | None = None
    pass_rates: dict[str, Probability]
    validator: Validator | None = None
    cached_share: Probability = 0.0
    cost_bad_answer: NonNegative | None = None
    cost_failed: NonNegative | None = None
    last_reviewed: dt.date | None = None


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


# ---------------------------------------------------------------------------------------------------------
# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` semantics, but duplicate keys are an error; raises WorksheetError."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise WorksheetError(source, [Problem(where, f"not valid YAML: {problem}")]) from None


def field_path(loc: Iterable[Any]) -> str:
    """``('tasks', 3, 'traffic_share')`` -> ``tasks[3].traffic_share``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pydantic_problems(err: ValidationError, prefix: tuple = ()) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc = prefix + tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        msg = re.sub(r" or instance of \w+", "", e["msg"].removeprefix("Value error, "))
        if e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif e["type"] not in ("value_error", "assertion_error") and "input" in e:
            msg = f"{msg} (got {_short(e['input'])})"
        problems.append(Problem(field_path(loc), msg))
    return problems


_CSV_NUMBER = {
    "traffic_share",
    "quality_threshold",
    "latency_budget_s",
    "cached_share",
    "cost_bad_answer",
    "cost_failed",
}


def _csv_number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def tasks_from_csv(path: Path) -> tuple[list[dict], list[Problem]]:
    """Read a task table: one row per category; ``pass_rate.<model>`` and ``validator.<field>`` columns.

    Token bands come as ``tokens_in`` (fixed) or ``tokens_in_p50`` + ``tokens_in_p95`` (same for out).
    """
    problems: list[Problem] = []
    tasks: list[dict] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        return [], [Problem("tasks", f"cannot read task table {path}: {exc.strerror}")]
    if not rows:
        return [], [Problem("tasks", f"task table {path} has no rows")]
    columns = set(rows[0])
    for col in ("name", "traffic_share", "quality_threshold"):
        if col not in columns:
            problems.append(Problem("tasks", f"task table {path.name} is missing column {col!r}"))
    for i, row in enumerate(rows):
        task: dict[str, Any] = {}
        for col, raw in row.items():
            if col is None or raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            try:
                if col == "name":
                    task["name"] = raw
                elif col == "last_reviewed":
                    task["last_reviewed"] = dt.date.fromisoformat(raw)
                elif col in _CSV_NUMBER:
                    task[col] = _csv_number(raw)
                elif col.startswith("pass_rate."):
                    task.setdefault("pass_rates", {})[col.removeprefix("pass_rate.")] = _csv_number(raw)
                elif col.startswith("validator."):
                    task.setdefault("validator", {})[col.removeprefix("validator.")] = _csv_number(raw)
                elif col.startswith(("tokens_in", "tokens_out")):
                    base, _, q = col.partition("_p")
                    if q:
                        band = task.setdefault(base, {})
                        if isinstance(band, dict):
                            band[f"p{q}"] = _csv_number(raw)
                    else:
                        task[col] = _csv_number(raw)
                else:
                    problems.append(Problem(f"tasks[{i}].{col}", f"unknown column {col!r} in {path.name}"))
            except ValueError:
                problems.append(Problem(f"tasks[{i}].{col}", f"not a number/date: {raw!r} ({path.name})"))
        task.setdefault("pass_rates", {})
        tasks.append(task)
    return tasks, problems


def _items_by_name(items: list, kind: str) -> tuple[dict[str, Any], list[Problem]]:
    by_name: dict[str, Any] = {}
    problems = []
    for i, item in items:
        if item.name in by_name:
            problems.append(Problem(f"{kind}[{i}].name", f"duplicate name {item.name!r}"))
        else:
            by_name[item.name] = item
    return by_name, problems


def _raw_names(data: Mapping[str, Any], key: str) -> dict[str, None]:
    """Names of a section's entries as written (ordered), whether or not the entry is otherwise valid."""
    items = data.get(key)
    if not isinstance(items, list):
        return {}
    return {i["name"]: None for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)}


def _cross_checks(
    data: Mapping[str, Any], models: list, tasks: list, policies: list, all_tasks_valid: bool
) -> list[Problem]:
    """Checks that relate sections: shares, names, pass-rate coverage, chain targets, baseline."""
    problems: list[Problem] = []
    _, p = _items_by_name(models, "models")
    problems += p
    valid_tasks, p = _items_by_name(tasks, "tasks")
    problems += p
    _, p = _items_by_name(policies, "policies")
    problems += p
    # names come from the raw data, so one broken entry does not hide every reference to it
    model_names = _raw_names(data, "models")
    task_names = _raw_names(data, "tasks")
    models_listed = isinstance(data.get("models"), list)  # else the section itself is the reported problem
    tasks_listed = isinstance(data.get("tasks"), list)

    percent = data.get("share_unit") == "percent"
    if all_tasks_valid and tasks:
        total = sum(t.traffic_share for _, t in tasks)
        target = 100.0 if percent else 1.0
        if abs(total - target) > 1e-6 * target:
            unit = "%" if percent else ""
            problems.append(
                Problem(
                    "tasks[*].traffic_share",
                    f"shares sum to {total:.6g}{unit}, must sum to {target:g}{unit} (routecalc does not renormalise)",
                )
            )
    elif not percent:
        for i, t in tasks:
            if t.traffic_share > 1:
                problems.append(Problem(f"tasks[{i}].traffic_share", "a fraction above 1 (set share_unit: percent?)"))
    for i, t in tasks:
        for m in t.pass_rates:
            if models_listed and m not in model_names:
                problems.append(Problem(f"tasks[{i}].pass_rates.{m}", f"unknown model {m!r}"))

    for i, pol in policies:
        base = f"policies[{i}]"
        for cat in task_names:
            if cat not in pol.routes:
                problems.append(Problem(f"{base}.routes", f"skips category {cat!r}"))
        if pol.final_reject == "human_review" and pol.human_review is None:
            problems.append(Problem(f"{base}.human_review", "required when final_reject is human_review"))
        for cat, steps in pol.routes.items():
            path = f"{base}.routes.{cat}"
            if cat not in task_names:
                if tasks_listed:
                    problems.append(Problem(path, f"unknown category {cat!r}"))
                continue
            task = valid_tasks.get(cat)
            if not steps:
                problems.append(Problem(path, "empty route"))
            if pol.kind == "static" and len(steps) > 1:
                problems.append(Problem(path, "a static route names one model (use cascade/fallback/chain)"))
            if len(steps) > MAX_CHAIN:
                problems.append(Problem(path, f"chain of {len(steps)} steps; at most {MAX_CHAIN}"))
            for s, step in enumerate(steps):
                spath = f"{path}[{s}]"
                if step.model not in model_names:
                    if models_listed:
                        problems.append(Problem(f"{spath}.model", f"unknown model {step.model!r}"))
                elif task is not None and step.model not in task.pass_rates:
                    problems.append(
                        Problem(
                            f"{spath}.model",
                            f"no pass rate for ({cat!r}, {step.model!r}): add tasks[..].pass_rates.{step.model}",
                        )
                    )
                if pol.kind != "chain" and (
                    step.gate is not None or step.on_reject is not None or step.on_failure is not None
                ):
                    problems.append(Problem(spath, f"gate/on_reject/on_failure need kind: chain (is {pol.kind})"))
                gated = step_gated(pol, step, s, len(steps))
                if gated and task is not None and task.validator is None:
                    problems.append(
                        Problem(f"{spath}", f"a gated step needs tasks[{cat}].validator (catch, false_reject)")
                    )
                for trig in ("on_reject", "on_failure"):
                    tgt = getattr(step, trig)
                    if isinstance(tgt, int) and not (s < tgt < len(steps)):
                        problems.append(
                            Problem(
                                f"{spath}.{trig}",
                                f"step {tgt} is not a later step of this chain (steps {s + 1}..{len(steps) - 1});"
                                " chains only go forward, so they cannot loop",
                            )
                        )
                if step.on_failure in ("deliver", "human_review"):
                    problems.append(Problem(f"{spath}.on_failure", "a failed step has no answer to deliver"))
                if step.on_reject == "human_review" and pol.human_review is None:
                    problems.append(Problem(f"{spath}.on_reject", "needs the policy's human_review cost/latency"))
                if step.on_reject is not None and not gated:
                    problems.append(Problem(f"{spath}.on_reject", "an ungated step never rejects (set gate: true)"))

    baseline = data.get("baseline")
    if isinstance(baseline, str) and policies and baseline not in {p.name for _, p in policies}:
        problems.append(Problem("baseline", f"names no policy ({baseline!r})"))
    return problems


def _section(data: Mapping[str, Any], key: str, spec: type[BaseModel]) -> tuple[list, bool]:
    """Validate each list item on its own, so cross checks can run on the valid ones."""
    items = data.get(key)
    if not isinstance(items, list):
        return [], False
    valid = []
    for i, item in enumerate(items):
        with contextlib.suppress(ValidationError):
            valid.append((i, spec.model_validate(item)))
    return valid, len(valid) == len(items)


def validate_worksheet(data: Any, source: str = "worksheet", base_dir: Path | None = None) -> Worksheet:
    """Validate parsed worksheet data; raise WorksheetError listing every problem with its field path."""
    if not isinstance(data, dict):
        raise WorksheetError(source, [Problem("", "a worksheet is a YAML mapping (models:, tasks:, ...)")])
    problems: list[Problem] = []
    if isinstance(data.get("tasks"), str):
        csv_path = Path(data["tasks"])
        if not csv_path.is_absolute() and base_dir is not None:
            csv_path = base_dir / csv_path
        tasks, csv_problems = tasks_from_csv(csv_path)
        problems += csv_problems
        data = {**data, "tasks": tasks}
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise WorksheetError(
            source,
            [Problem("schema_version", f"this routecalc reads schema_version {SCHEMA_VERSION}")],
        )
    worksheet = None
    try:
        worksheet = Worksheet.model_validate(data)
    except ValidationError as err:
        problems += _pydantic_problems(err)
    models, _ = _section(data, "models", ModelSpec)
    tasks, tasks_ok = _section(data, "tasks", TaskSpec)
    policies, _ = _section(data, "policies", PolicySpec)
    problems += _cross_checks(data, models, tasks, policies, tasks_ok)
    if problems or worksheet is None:
        raise WorksheetError(source, problems)
    return worksheet


def load_worksheet(path: str | Path, overlays: Iterable[str | Path] = ()) -> Worksheet:
    """Read, overlay (what-if scenarios) and validate a worksheet file (YAML)."""
    path = Path(path)
    data = read_yaml(path)
    for overlay in overlays:
        data = apply_overlay(data, read_yaml(Path(overlay)))
    return validate_worksheet(data, str(path), base_dir=path.parent)


def read_text(path: Path, error: type[InputError] = InputError, what: str = "file") -> str:
    """A user's input file as text; missing or unreadable is ``error`` (an InputError), never a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None


def read_yaml(path: Path) -> Any:
    """Parse a YAML file strictly; a missing file or bad YAML is an InputError, not a traceback."""
    return parse_yaml(read_text(path), str(path))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (provenance for reports and exports)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# What-if overlays


_NAMED_LISTS = ("models", "tasks", "policies")


def apply_overlay(base: Any, overlay: Any) -> Any:
    """Deep-merge a what-if overlay onto worksheet data.

    Mappings merge key by key; the lists ``models``/``tasks``/``policies`` merge item by ``name`` (a new name
    is appended); a ``scale:`` block multiplies numbers: ``scale: {models: {price_in: 1.2}}`` or per name
    ``scale: {models: {gpt-4o: {price_out: 0.5}}}``. Anything else replaces.
    """
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        raise InputError("a scenario overlay and its worksheet must both be YAML mappings")
    overlay = dict(overlay)
    scale = overlay.pop("scale", None)
    out = _merge(base, overlay)
    if scale is not None:
        out = _scale(out, scale)
    return out


def _named(item: dict) -> bool:
    return isinstance(item.get("name"), str)


def _merge(base: Any, over: Any, key: str | None = None) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for k, v in over.items():
            merged[k] = _merge(base[k], v, k) if k in base else v
        return merged
    if key in _NAMED_LISTS and isinstance(base, list) and isinstance(over, list):
        merged_list = list(base)
        index = {item["name"]: i for i, item in enumerate(base) if isinstance(item, dict) and _named(item)}
        for item in over:
            name = item["name"] if isinstance(item, dict) and _named(item) else None
            if name is not None and name in index:
                merged_list[index[name]] = _merge(base[index[name]], item)
            else:
                merged_list.append(item)
        return merged_list
    return over


def _scale(data: dict, scale: Any) -> dict:
    if not isinstance(scale, dict):
        raise InputError("scenario 'scale:' must be a mapping such as {models: {price_in: 1.2}}")
    out = dict(data)
    for section, factors in scale.items():
        if section not in _NAMED_LISTS or not isinstance(factors, dict):
            raise InputError(f"scenario scale.{section}: scale models, tasks or policies by field")
        if not isinstance(out.get(section), list):
            continue  # nothing to scale; validation reports the section itself
        items = []
        for item in out[section]:
            if isinstance(item, dict):
                per_item = factors.get(item["name"]) if _named(item) else None
                fields = per_item if isinstance(per_item, dict) else factors
                item = {
                    fld: v * fields[fld] if _number(v) and _number(fields.get(fld)) else v for fld, v in item.items()
                }
            items.append(item)
        out[section] = items
    return out


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


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
