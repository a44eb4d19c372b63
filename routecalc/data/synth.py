"""A realistic synthetic request log drawn from a worksheet: for tests, the shipped sample and the benchmark.

Each request arrives at a time drawn from the traffic profile (hour of day, weekday, growth, spike days: the
worksheet's ``volume.profile``, or :data:`OFFICE_PROFILE`), belongs to a category drawn with the traffic shares,
and has input and output tokens drawn from the category's bands (rounded to whole tokens, at least 1; output
scaled by the model's ``output_ratio``). It then walks the policy's chain for its category as the worksheet
describes: each try fails with the model's failure rate, typed by its error shares (a content-filter refusal is
not retried), is retried up to the step's retries after ``backoff_s``, and a step that fails every try moves to
the next step; a gated step (cascade) checks the answer (good with the pass rate, independently) and sends a
reject to the next step. Every try is one row, LiteLLM-shaped (:func:`litellm_frame`): a success takes
``ttft + y tpot`` (or ``e2e``) seconds from the model's latency law and costs its tokens at the worksheet's prices
(in the worksheet's currency); a timeout takes ``timeout_s``, a fast error ``error_latency_s``, and neither is
billed (unless ``bill_failed_input``).

Supported: static, fallback and cascade policies, and chains whose steps are models going to the next step on a
reject or failure (no routers, tools, hedges or deadlines). Outcomes are independent across models. Vectorized:
a loop over steps and tries, none over requests.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routecalc.errors import InputError
from routecalc.worksheet.schema import DAYS_PER_MONTH, Band, TrafficProfile, Worksheet, step_gated

# a typical business profile (UTC): quiet nights, a morning and an afternoon peak, weekends at about 40 %
OFFICE_PROFILE = TrafficProfile(
    hourly=[
        0.2,
        0.15,
        0.1,
        0.1,
        0.15,
        0.3,
        0.6,
        1.0,
        1.5,
        1.9,
        2.0,
        1.9,
        1.6,
        1.8,
        1.9,
        1.8,
        1.6,
        1.3,
        1.0,
        0.8,
        0.6,
        0.5,
        0.4,
        0.3,
    ],
    weekly=[1.1, 1.15, 1.15, 1.1, 1.0, 0.45, 0.4],
)
ERRORS = {  # error type -> (HTTP code, LiteLLM exception class, message)
    "timeout": ("408", "Timeout", "litellm.Timeout: Request timed out"),
    "5xx": ("503", "ServiceUnavailableError", "litellm.ServiceUnavailableError: The server is overloaded"),
    "429": ("429", "RateLimitError", "litellm.RateLimitError: Rate limit reached for requests"),
    "content_filter": ("400", "ContentPolicyViolationError", "litellm.ContentPolicyViolationError: content_filter"),
}
ERROR_ORDER = ("timeout", "5xx", "429", "content_filter")


@dataclass(frozen=True, eq=False)
class Calls:
    """One row per try, sorted by start. Times in epoch seconds (UTC); ``kind`` 0 success, else 1 + index into
    :data:`ERROR_ORDER`; tokens as logged (a failed try logs its input tokens, no output); cost in the worksheet
    currency. ``request`` numbers the requests 0..n-1 (several rows share one when a try failed or escalated)."""

    start: np.ndarray
    end: np.ndarray
    first_token: np.ndarray  # NaN for failed tries
    request: np.ndarray
    category: np.ndarray  # index into ``categories``
    model: np.ndarray  # index into ``models``
    kind: np.ndarray
    tokens_in: np.ndarray
    tokens_out: np.ndarray
    cost: np.ndarray
    categories: tuple[str, ...]
    models: tuple[str, ...]
    providers: tuple[str, ...]
    deployments: tuple[str, ...]  # what LiteLLM logs as ``model``: the litellm id without its provider prefix

    @property
    def n(self) -> int:
        return int(self.start.size)


def _draw_band(rng: np.random.Generator, band: Band, n: int) -> np.ndarray:
    if band.p50 is None:
        return np.full(n, float(band.mean))
    return np.exp(band.mu + band.sigma * rng.standard_normal(n))


def hourly_intensity(
    profile: TrafficProfile, start: dt.datetime, days: float, origin: dt.datetime | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The hours of ``[start, start + days)``: their start (epoch seconds, shape (H,)) and expected relative traffic
    (hourly x weekday weight x growth since ``origin``, default ``start``, x spike factor x the share of the hour
    inside the period; shape (H,)). Relative: comparable between periods that share ``origin``."""
    t0 = start.replace(tzinfo=dt.UTC) if start.tzinfo is None else start
    o = t0 if origin is None else (origin.replace(tzinfo=dt.UTC) if origin.tzinfo is None else origin)
    t0s = t0.timestamp()
    hours = math.ceil(days * 24)
    h = np.arange(hours)
    at = t0s + h * 3600.0
    hourly = np.asarray(profile.hourly if profile.hourly is not None else [1.0] * 24, dtype=float)
    weekly = np.asarray(profile.weekly if profile.weekly is not None else [1.0] * 7, dtype=float)
    hod = ((at // 3600) % 24).astype(int)
    dow = (((at // 86400) + 3) % 7).astype(int)  # 1970-01-01 was a Thursday: Monday = 0
    months = (at - o.timestamp()) / (86400 * DAYS_PER_MONTH)
    rate = hourly[hod] * weekly[dow] * (1 + profile.growth_per_month) ** months
    spikes = {s.day: s.factor for s in profile.spikes}
    if spikes:
        dom = np.array([dt.datetime.fromtimestamp(x, dt.UTC).day for x in at[::24]] if hours else [])
        day_factor = np.array([spikes.get(int(d), 1.0) for d in dom])
        rate = rate * np.repeat(day_factor, 24)[:hours]
    cover = np.clip(days * 24 - h, 0, 1)  # the last hour may be partial
    return at, rate * cover


def arrival_times(
    rng: np.random.Generator, profile: TrafficProfile, requests: int, start: dt.datetime, days: float
) -> np.ndarray:
    """``requests`` epoch seconds in ``[start, start + days)``, sorted: counts per hour multinomial with the
    profile's intensity (hourly x weekday weight x growth x spike factor), uniform within the hour."""
    at, p = hourly_intensity(profile, start, days)
    cover = np.clip(days * 24 - np.arange(at.size), 0, 1)
    counts = rng.multinomial(requests, p / p.sum())
    base = np.repeat(at, counts)
    width = np.repeat(cover, counts) * 3600.0
    return np.sort(base + rng.random(requests) * width)


def synth_calls(
    ws: Worksheet,
    policy: str | None = None,
    requests: int = 10_000,
    start: dt.datetime | None = None,
    days: float = 30.0,
    seed: int = 0,
    profile: TrafficProfile | None = None,
) -> Calls:
    """Draw ``requests`` requests of the worksheet through ``policy`` (default: the baseline, else the first)."""
    if requests < 1:
        raise InputError("requests must be at least 1")
    if days <= 0:
        raise InputError("days must be positive")
    if not ws.policies:
        raise InputError("the worksheet has no policies: synthetic logs need one to route requests")
    pol = ws.policy(policy or ws.baseline or ws.policies[0].name)
    rng = np.random.default_rng(seed)
    prof = profile or ws.volume.profile or OFFICE_PROFILE
    start = start or dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    arrive = arrival_times(rng, prof, requests, start, days)
    cat = rng.choice(len(ws.tasks), size=requests, p=np.asarray(ws.shares) / sum(ws.shares))
    x = np.empty(requests)
    y = np.empty(requests)
    for c, task in enumerate(ws.tasks):
        sel = cat == c
        x[sel] = _draw_band(rng, task.tokens_in, int(sel.sum()))
        y[sel] = _draw_band(rng, task.tokens_out, int(sel.sum()))
    x = np.maximum(1.0, np.rint(x))
    names = [m.name for m in ws.models]
    chains = []  # per category: [(model index, retries, gated)]
    retries = pol.retries if pol.retries is not None else ws.defaults.retries
    for task in ws.tasks:
        leaves = pol.chains(task.name)
        if len(leaves) != 1:
            raise InputError(f"synth: policy {pol.name!r} routes {task.name!r} with a router (not supported)")
        steps = []
        for i, step in enumerate(leaves[0]):
            if step.model is None or step.deadline_s is not None:
                raise InputError(f"synth: policy {pol.name!r} has a tool, hedge or deadline step (not supported)")
            for target in (step.on_reject, step.on_failure):
                if target not in (None, "next") and not (isinstance(target, int) and target == i + 1):
                    raise InputError(f"synth: policy {pol.name!r} jumps past the next step (not supported)")
            gated = step_gated(pol, step, i, len(leaves[0]))
            steps.append((names.index(step.model), step.retries if step.retries is not None else retries, gated))
        chains.append(steps)
    return _walk(ws, rng, arrive, cat, x, y, chains, names)


def _walk(
    ws: Worksheet,
    rng: np.random.Generator,
    arrive: np.ndarray,
    cat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    chains: list[list[tuple[int, int, bool]]],
    names: list[str],
) -> Calls:
    n = arrive.size
    k = ws.tokens_per_price_unit
    clock = arrive.copy()
    active = np.ones(n, dtype=bool)
    out: dict[str, list[np.ndarray]] = {
        f: [] for f in ("start", "end", "first", "req", "model", "kind", "tout", "cost")
    }
    depth = max(len(c) for c in chains)
    for s in range(depth):
        has_step = np.array([len(c) > s for c in chains])
        here = np.flatnonzero(active & has_step[cat])
        active[active & ~has_step[cat]] = False  # a chain that ended without an answer: the request failed
        if here.size == 0:
            break
        m_of = np.array([c[s][0] if len(c) > s else -1 for c in chains])[cat[here]]
        r_of = np.array([c[s][1] if len(c) > s else 0 for c in chains])[cat[here]]
        g_of = np.array([c[s][2] if len(c) > s else False for c in chains])[cat[here]]
        pending = np.ones(here.size, dtype=bool)  # still trying at this step
        answered = np.zeros(here.size, dtype=bool)
        for attempt in range(int(r_of.max()) + 1):
            idx = np.flatnonzero(pending & (attempt <= r_of))
            pending[~(attempt <= r_of)] = False
            if idx.size == 0:
                break
            req = here[idx]
            m = m_of[idx]
            if attempt:
                clock[req] += ws.defaults.backoff_s
            fail_p = np.array([mm.failure_rate for mm in ws.models])[m]
            shares = np.array([[mm.error_shares[e] for e in ERROR_ORDER] for mm in ws.models])[m]
            u = rng.random(idx.size)
            failed = u < fail_p
            etype = np.full(idx.size, -1)
            if failed.any():
                cum = np.cumsum(shares[failed], axis=1)
                etype[failed] = np.minimum((rng.random(int(failed.sum()))[:, None] > cum).sum(axis=1), 3)
            ratio = np.array([mm.output_ratio for mm in ws.models])[m]
            yy = np.maximum(0.0, np.rint(y[req] * ratio))
            dur = np.empty(idx.size)
            first = np.full(idx.size, np.nan)
            ok = ~failed
            for j, mm in enumerate(ws.models):
                sel = ok & (m == j)
                if sel.any():
                    lat = mm.latency
                    if lat.e2e_s is not None:
                        dur[sel] = _draw_band(rng, lat.e2e_s, int(sel.sum()))
                    else:
                        a = _draw_band(rng, lat.ttft_s, int(sel.sum()))  # type: ignore[arg-type]
                        b = _draw_band(rng, lat.tpot_s, int(sel.sum()))  # type: ignore[arg-type]
                        first[sel] = a
                        dur[sel] = a + yy[sel] * b
                for e, code in enumerate(ERROR_ORDER):
                    sel_e = failed & (m == j) & (etype == e)
                    dur[sel_e] = mm.timeout_s if code == "timeout" else mm.error_latency_s
            p_in = np.array([mm.price_in for mm in ws.models])[m] / k
            p_out = np.array([mm.price_out for mm in ws.models])[m] / k
            p_cache = np.array([mm.price_cache if mm.price_cache is not None else mm.price_in for mm in ws.models])
            cached = np.array([t.cached_share for t in ws.tasks])[cat[req]]
            in_cost = x[req] * (p_in + cached * (p_cache[m] / k - p_in))
            cost = np.where(ok, in_cost + yy * p_out, in_cost if ws.defaults.bill_failed_input else 0.0)
            out["start"].append(clock[req].copy())
            out["end"].append(clock[req] + dur)
            out["first"].append(clock[req] + first)
            out["req"].append(req)
            out["model"].append(m)
            out["kind"].append(np.where(ok, 0, etype + 1))
            out["tout"].append(np.where(ok, yy, 0.0))
            out["cost"].append(cost)
            clock[req] += dur
            answered[idx[ok]] = True
            pending[idx[ok]] = False
            pending[idx[failed & (etype == ERROR_ORDER.index("content_filter"))]] = False  # a refusal is final
        # gate: a checked answer goes on to the next step when rejected
        done = answered.copy()
        gated = answered & g_of
        if gated.any():
            gi = np.flatnonzero(gated)
            req = here[gi]
            task_rates = [ws.tasks[c].rates for c in range(len(ws.tasks))]
            q = np.array([task_rates[c].get(names[mm], 0.0) for c, mm in zip(cat[req], m_of[gi], strict=True)])
            good = rng.random(gi.size) < q
            val = [ws.tasks[c].validator for c in range(len(ws.tasks))]
            catch = np.array([val[c].catch.rate if val[c] else 0.0 for c in cat[req]])
            false_rej = np.array([val[c].false_reject.rate if val[c] else 0.0 for c in cat[req]])
            lat_gate = np.array([val[c].latency_s if val[c] else 0.0 for c in cat[req]])
            clock[req] += lat_gate
            reject = np.where(good, rng.random(gi.size) < false_rej, rng.random(gi.size) < catch)
            done[gi[reject]] = False
        active[here[done]] = False
    cat_rows = [cat[r] for r in out["req"]]
    order = np.argsort(np.concatenate(out["start"]), kind="stable")
    join = lambda key: np.concatenate(out[key])[order]
    request = join("req")
    return Calls(
        start=join("start"),
        end=join("end"),
        first_token=join("first"),
        request=request,
        category=np.concatenate(cat_rows)[order],
        model=join("model").astype(np.int64),
        kind=join("kind").astype(np.int64),
        tokens_in=x[request],
        tokens_out=join("tout"),
        cost=join("cost"),
        categories=tuple(t.name for t in ws.tasks),
        models=tuple(names),
        providers=tuple(m.provider for m in ws.models),
        deployments=tuple((m.litellm_model or m.name).split("/", 1)[-1] for m in ws.models),
    )


def litellm_frame(calls: Calls, seed: int = 0) -> Any:
    """The calls as LiteLLM ``LiteLLM_SpendLogs`` rows (a Polars DataFrame; ``metadata`` a struct with
    ``spend_logs_metadata.category`` and, on failures, ``error_information``)."""
    import polars as pl

    rng = np.random.default_rng(seed)
    n = calls.n
    ids = rng.integers(0, 2**63, size=n, dtype=np.int64)
    failed = calls.kind > 0
    etype = np.where(failed, calls.kind - 1, 0)
    pick = lambda col: np.array([ERRORS[e][col] for e in ERROR_ORDER])[etype]
    cat_names = np.array(calls.categories)[calls.category]
    model_names = np.array(calls.models)

    def iso(seconds: np.ndarray) -> Any:
        us = pl.Series(np.rint(seconds * 1e6).astype(np.int64))
        return pl.from_epoch(us, time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")

    first = np.where(np.isfinite(calls.first_token), calls.first_token, calls.end)
    error = pl.struct(
        error_code=pl.Series(pick(0)),
        error_class=pl.Series(pick(1)),
        error_message=pl.Series(pick(2)),
        llm_provider=pl.Series(np.array(calls.providers)[calls.model]),
    )
    frame = pl.DataFrame(
        {
            "request_id": [f"chatcmpl-{v:016x}" for v in ids.tolist()],
            "call_type": "acompletion",
            "spend": np.round(calls.cost, 10),
            "total_tokens": (calls.tokens_in + calls.tokens_out).astype(np.int64),
            "prompt_tokens": calls.tokens_in.astype(np.int64),
            "completion_tokens": calls.tokens_out.astype(np.int64),
            "startTime": iso(calls.start),
            "endTime": iso(calls.end),
            "completionStartTime": iso(first),
            "model": np.array(calls.deployments)[calls.model],
            "model_group": model_names[calls.model],
            "custom_llm_provider": np.array(calls.providers)[calls.model],
            "cat": cat_names,
            "status": np.where(failed, "failure", "success"),
            "failed": failed,
        }
    )
    return frame.select(
        pl.exclude("cat", "failed"),
        pl.struct(
            spend_logs_metadata=pl.struct(category=pl.col("cat")),
            error_information=pl.when(pl.col("failed")).then(error),
        ).alias("metadata"),
        pl.concat_list(pl.col("cat")).alias("request_tags"),
    ).select(
        "request_id",
        "call_type",
        "spend",
        "total_tokens",
        "prompt_tokens",
        "completion_tokens",
        "startTime",
        "endTime",
        "completionStartTime",
        "model",
        "model_group",
        "custom_llm_provider",
        "metadata",
        "request_tags",
        "status",
    )


def generic_frame(calls: Calls) -> Any:
    """The calls in the generic shape (``timestamp`` a UTC datetime, ``category``, ``model``, ``tokens_in``,
    ``tokens_out``, ``latency_s``, ``ttft_s``, ``status``, ``error``, ``cost``): compact, native types."""
    import polars as pl

    enum = lambda codes, names: pl.Series(list(names), dtype=pl.Enum(list(names))).gather(codes.astype(np.uint32))
    return pl.DataFrame(
        {
            "timestamp": pl.from_epoch(
                pl.Series(np.rint(calls.start * 1e6).astype(np.int64)), time_unit="us"
            ).dt.replace_time_zone("UTC"),
            "category": enum(calls.category, calls.categories),
            "model": enum(calls.model, calls.models),
            "tokens_in": calls.tokens_in.astype(np.int32),
            "tokens_out": calls.tokens_out.astype(np.int32),
            "latency_s": (calls.end - calls.start).astype(np.float32),
            "ttft_s": pl.Series((calls.first_token - calls.start).astype(np.float32)).fill_nan(None),
            "status": enum(np.minimum(calls.kind, 1), ("success", "failure")),
            "error": enum(np.maximum(calls.kind - 1, 0), ERROR_ORDER).zip_with(
                pl.Series(calls.kind > 0), pl.Series([None], dtype=pl.Enum(list(ERROR_ORDER)))
            ),
            "cost": calls.cost,
        }
    )


def write_log(calls: Calls, path: str | Path, shape: str = "litellm", seed: int = 0, header: bool = True) -> Path:
    """Write the calls as LiteLLM spend logs (``litellm``) or the generic shape: JSONL (LiteLLM's metadata nested),
    CSV (JSON columns as JSON text) or Parquet, by extension. ``header=False`` appends to a CSV or JSONL file."""
    import polars as pl

    path = Path(path)
    if shape not in ("litellm", "generic"):
        raise InputError(f"shape: litellm or generic, not {shape!r}")
    frame = litellm_frame(calls, seed) if shape == "litellm" else generic_frame(calls)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open("w" if header else "a", encoding="utf-8") as fh:
            frame.write_ndjson(fh)
    elif suffix == ".csv":
        if shape == "litellm":
            frame = frame.with_columns(
                pl.col("metadata").struct.json_encode(),
                pl.format('["{}"]', pl.col("request_tags").list.join('","')).alias("request_tags"),
            )
        with path.open("w" if header else "a", encoding="utf-8", newline="") as fh:
            frame.write_csv(fh, include_header=header)
    elif suffix == ".parquet":
        if not header:
            raise InputError("Parquet files cannot be appended to: write parts and combine them")
        frame.write_parquet(path)
    else:
        raise InputError(f"{path}: write .jsonl, .csv or .parquet")
    return path


def write_litellm(calls: Calls, path: str | Path, seed: int = 0) -> Path:
    """Write the calls as LiteLLM spend logs (:func:`write_log`)."""
    return write_log(calls, path, "litellm", seed)
