"""Writing a log calibration as YAML: a starter worksheet (every guess marked), or an update of an existing one.

An update edits the user's file with ruamel.yaml's round trip (comments, order and layout elsewhere survive), then
re-reads it strictly and checks that the data equals the old data with exactly the intended edits, as
``calibrate evals -w`` does (:mod:`routecalc.data.calibrate_yaml`). What changes: ``volume.requests_per_month``
(replacing ``requests_per_day``) and ``volume.profile``; per category in the log ``traffic_share`` and the token
bands; per catalog model in the log ``failure_rate``, ``errors`` (replacing ``timeout_share``), ``latency``,
``timeout_s`` and ``error_latency_s``. Worksheet categories absent from the log get share 0 (and a warning);
log categories and models absent from the worksheet are listed and skipped.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routecalc.data.calibrate import BandFit
from routecalc.data.calibrate_yaml import _check_edit, _flow, _num, _q, flow_map, flow_seq, round_trip, shares
from routecalc.data.logcal import LogCalibration, ModelReliability, ProfileFit
from routecalc.worksheet import Worksheet, load_worksheet_text

SHARE_DECIMALS = 6


def _band(fit: BandFit) -> Any:
    return fit.as_yaml()


def latency_data(m: ModelReliability) -> dict[str, Any] | None:
    return {k: _band(v) for k, v in m.latency.items()} if m.latency else None


def model_fields(m: ModelReliability, outcomes: bool = True) -> dict[str, Any]:
    """The worksheet fields a model's calls give: failure rate (when the log has outcomes), error shares, latency,
    timeout and error latency."""
    out: dict[str, Any] = {"failure_rate": m.failure_rate} if outcomes else {}
    if m.errors is not None:
        out["errors"] = dict(m.errors)
    lat = latency_data(m)
    if lat is not None:
        out["latency"] = lat
    if m.timeout_s is not None:
        out["timeout_s"] = m.timeout_s
    if m.error_latency_s is not None:
        out["error_latency_s"] = m.error_latency_s
    return out


def _calls_note(m: ModelReliability) -> str:
    kinds = ", ".join(f"{v:,.0f} {k}" for k, v in m.failures.items() if v and k in (m.errors or {}))
    return f"{m.provider_failures:,.0f} of {m.calls:,.0f} calls failed" + (f" ({kinds})" if kinds else "")


def _profile_yaml(p: ProfileFit) -> list[str]:
    out = ["  profile:   # requests over time (UTC), fitted to the log"]
    if p.hourly is not None:
        out.append(f"    hourly: {_flow(p.hourly)}")
    if p.weekly is not None:
        out.append(f"    weekly: {_flow(p.weekly)}   # Monday .. Sunday")
    out.append(f"    growth_per_month: {_num(p.growth_per_month)}")
    if p.spikes:
        out.append(f"    spikes: {_flow([{'day': d, 'factor': f} for d, f in p.spikes])}")
    return out


def starter_text(cal: LogCalibration, name: str, currency: str = "USD") -> str:
    """A complete, loadable worksheet from a log; numbers not from the log are marked ``# GUESS``."""
    src = Path(cal.source).name
    out: list[str] = []
    w = out.append
    w(f"# Written by `routecalc calibrate logs {src}`. Volume, traffic profile and shares, token bands, failure")
    w("# rates by type, latency and prices come from that log; every line marked GUESS is a placeholder to replace.")
    w("# Add pass rates (routecalc calibrate evals) and policies before comparing routes.")
    w("schema_version: 1")
    w(f"name: {_q(name)}")
    w(f"currency: {currency}              # GUESS: the currency of the log's cost")
    w("price_unit: per_1m")
    w("share_unit: fraction")
    w("volume:")
    w(
        f"  requests_per_month: {_num(round(cal.calls_per_month))}   # {cal.calls:,.0f} calls over "
        f"{cal.days:.2f} days (every logged call counts)"
    )
    out += _profile_yaml(cal.profile)
    w("")
    w("models:")
    for m in cal.models:
        w(f"  - name: {_q(m.name)}")
        w("    provider: unknown          # GUESS: openai, anthropic, ...")
        if m.price_in is not None and m.price_out is not None:
            w(f"    price_in: {_num(_sig(m.price_in * 1e6))}   # per 1M tokens, fitted to the logged cost")
            w(f"    price_out: {_num(_sig(m.price_out * 1e6))}")
        else:
            w("    price_in: 0                # GUESS: fill in (per 1M input tokens)")
            w("    price_out: 0               # GUESS: fill in (per 1M output tokens)")
        lat = latency_data(m)
        if lat is not None:
            n = next(iter(m.latency.values())).n  # type: ignore[union-attr]
            w(f"    latency: {_flow(lat)}   # from {n:,} successful calls")
        else:
            w("    latency: {e2e_s: {p50: 1.0, p95: 4.0}}   # GUESS: the log has no latency")
        if cal.data.has_outcomes:
            w(f"    failure_rate: {_num(m.failure_rate)}   # {_calls_note(m)}")
        else:
            w("    failure_rate: 0.01   # GUESS: the log does not say which calls failed")
        if m.errors is not None:
            w(f"    errors: {_flow(m.errors)}")
        if m.timeout_s is not None:
            w(f"    timeout_s: {_num(m.timeout_s)}   # median duration of its timeouts")
        if m.error_latency_s is not None:
            w(f"    error_latency_s: {_num(m.error_latency_s)}   # median duration of its fast errors")
    w("")
    w("tasks:")
    counts = [round(c.calls) for c in cal.categories]
    for cat, share in zip(cal.categories, shares(counts, SHARE_DECIMALS), strict=True):
        w(f"  - name: {_q(cat.name)}")
        w(f"    traffic_share: {_num(share)}   # {cat.calls:,.0f} calls")
        for key, fit, default in (("tokens_in", cat.tokens_in, 1000), ("tokens_out", cat.tokens_out, 300)):
            if fit is not None:
                w(f"    {key}: {_flow(fit.as_yaml())}   # from {fit.n:,} successful calls")
            else:
                w(f"    {key}: {default}   # GUESS: the log has no {key}")
        w("    quality_threshold: 0.9   # GUESS: your target share of good answers")
    w("")
    w("policies: []   # add pass rates and policies to compare routes")
    return "\n".join(out) + "\n"


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def checked_starter(cal: LogCalibration, name: str) -> str:
    """:func:`starter_text`, read back strictly and validated (names from the log go through the worksheet's
    own rules)."""
    text = starter_text(cal, name)
    load_worksheet_text(text, f"worksheet calibrated from {cal.source}")
    return text


@dataclass(frozen=True)
class LogUpdate:
    """What an update changes: (where, field, old, new) as text, and the new file's text."""

    text: str
    changes: tuple[tuple[str, str, str, str], ...]
    skipped_categories: tuple[str, ...] = field(default_factory=tuple)  # in the log, not in the worksheet
    skipped_models: tuple[str, ...] = field(default_factory=tuple)
    zeroed: tuple[str, ...] = field(default_factory=tuple)  # worksheet categories without calls in the log

    @property
    def n_changes(self) -> int:
        return len(self.changes)


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        text = _flow(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return _num(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _tidy(value: Any) -> Any:
    """Whole-number floats as ints (``605``, not ``605.0``), recursively."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def _block(data: dict[str, Any]) -> Any:
    """A block mapping whose values are written in flow style (the profile: one line per field)."""
    from ruamel.yaml.comments import CommentedMap

    m = CommentedMap()
    for k, v in data.items():
        m[k] = flow_seq(v) if isinstance(v, list) else flow_map(v) if isinstance(v, dict) else v
    return m


def plan_update(path: Path, ws: Worksheet, cal: LogCalibration) -> LogUpdate:
    """The worksheet at ``path`` with the log's numbers (module docstring); nothing is written here."""
    rt, doc, plain, _ = round_trip(path, "calibrate logs")
    expected = copy.deepcopy(plain)
    changes: list[tuple[str, str, str, str]] = []

    def put(node: Any, exp: dict, key: str, value: Any, where: str, after: str, block: bool = False) -> None:
        value = _tidy(value)
        if exp.get(key) == value:
            return
        changes.append((where, key, _show(exp.get(key)), _show(value)))
        item = _block(value) if block else flow_map(value) if isinstance(value, dict) else value
        keys = list(node.keys())
        if key not in node and after in keys:  # next to its anchor; before the mapping's last key if that one
            at = keys.index(after) + 1  # carries a comment (the blank lines after a mapping belong to it)
            if at == len(keys) and node.ca.items.get(keys[-1]):
                at -= 1
            node.insert(at, key, item)
        elif key not in node and keys and node.ca.items.get(keys[-1]):
            node.insert(len(keys) - 1, key, item)
        else:
            node[key] = item
        exp[key] = value

    def drop(node: Any, exp: dict, key: str, where: str) -> None:
        if key in exp:
            changes.append((where, key, _show(exp[key]), "removed"))
            del node[key]
            del exp[key]

    vol, vol_exp = doc["volume"], expected["volume"]
    put(vol, vol_exp, "requests_per_month", round(cal.calls_per_month), "volume", "requests_per_day")
    drop(vol, vol_exp, "requests_per_day", "volume")
    put(vol, vol_exp, "profile", cal.profile.as_yaml(), "volume", "requests_per_month", block=True)

    by_name = {t.get("name"): i for i, t in enumerate(plain["tasks"]) if isinstance(t, dict)}
    in_log = {c.name: c for c in cal.categories}
    known = [n for n in by_name if n in in_log]
    counts = [round(in_log[n].calls) if n in in_log else 0 for n in by_name]
    scale = 100.0 if ws.share_unit == "percent" else 1.0
    new_shares = shares(counts, SHARE_DECIMALS) if sum(counts) else [0.0] * len(counts)
    for (name, i), share in zip(by_name.items(), new_shares, strict=True):
        node, exp = doc["tasks"][i], expected["tasks"][i]
        value = round(share * scale, SHARE_DECIMALS) if scale != 1.0 else share
        put(node, exp, "traffic_share", value, f"tasks.{name}", "name")
        cat = in_log.get(name)
        if cat is None:
            continue
        for key, fit in (("tokens_in", cat.tokens_in), ("tokens_out", cat.tokens_out)):
            if fit is not None:
                put(node, exp, key, fit.as_yaml(), f"tasks.{name}", "traffic_share")
    model_ix = {m.get("name"): i for i, m in enumerate(plain.get("models") or []) if isinstance(m, dict)}
    for m in cal.models:
        i = model_ix.get(m.name)
        if i is None:
            continue
        node, exp = doc["models"][i], expected["models"][i]
        fields = model_fields(m, cal.data.has_outcomes)
        anchor = "latency"
        for key, value in fields.items():
            put(node, exp, key, value, f"models.{m.name}", anchor)
            anchor = key
        if "errors" in fields:
            drop(node, exp, "timeout_share", f"models.{m.name}")
        elif m.failure_rate == 0 and cal.data.has_outcomes:
            drop(node, exp, "errors", f"models.{m.name}")
    buf = io.StringIO()
    rt.dump(doc, buf)
    text = buf.getvalue()
    _check_edit(text, expected, path)
    return LogUpdate(
        text=text,
        changes=tuple(changes),
        skipped_categories=tuple(c.name for c in cal.categories if c.name not in by_name),
        skipped_models=tuple(m.name for m in cal.models if m.name not in model_ix),
        zeroed=tuple(n for n in by_name if n not in known),
    )
