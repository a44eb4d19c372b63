"""Writing calibrated numbers as YAML: a new worksheet (with every guess marked), or an update of an existing one.

An update edits the user's file with ruamel.yaml's round-trip mode, so comments, key order and layout outside the
edited entries survive; then it re-reads the result with routecalc's own strict loader and checks that the data
equals the old data with exactly the intended edits (anything else is a bug, reported, nothing written).
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from routecalc.data.calibrate import BandFit, Calibration, CategoryCalibration
from routecalc.errors import InputError, RoutecalcError
from routecalc.worksheet import Worksheet, load_worksheet_text, parse_yaml, validate_worksheet

SHARE_DECIMALS = 6
GUESS = "GUESS"
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/+]*$")


# ---------------------------------------------------------------------------------------------------------
# Model names: eval file -> catalog


def model_mapping(
    eval_models: list[str] | None, model_map: Mapping[str, str], ws: Worksheet | None
) -> dict[str, str] | None:
    """eval name -> catalog name, or None (no worksheet, no map: the eval names are the catalog names).

    With a worksheet: each catalog model stands for its ``eval_name`` (default its own name), and ``--model-map``
    entries (eval=catalog) override that; a map target must be a catalog model. Without a worksheet the map alone
    names the models. Two eval names for one catalog model, or one for two, are errors.
    """
    del eval_models
    if ws is None and not model_map:
        return None
    out: dict[str, str] = {}
    if ws is not None:
        catalog = [m.name for m in ws.models]
        targets = set(model_map.values())
        bad = sorted(t for t in targets if t not in catalog)
        if bad:
            raise InputError(f"--model-map: {', '.join(bad)} not in the worksheet's models ({', '.join(catalog)})")
        for m in ws.models:
            if m.name in targets:
                continue  # the map says which eval name stands for it
            out[m.eval_name if m.eval_name is not None else m.name] = m.name
    for ev, cat in model_map.items():
        if ev in out and out[ev] != cat:
            raise InputError(f"--model-map: eval name {ev!r} already stands for {out[ev]!r}")
        out[ev] = cat
    seen: dict[str, str] = {}
    for ev, cat in out.items():
        if cat in seen:
            raise InputError(f"two eval names ({seen[cat]!r}, {ev!r}) map to the catalog model {cat!r}")
        seen[cat] = ev
    return out


# ---------------------------------------------------------------------------------------------------------
# Plain data for one category / model


def pass_rates_data(cat: CategoryCalibration) -> dict[str, dict[str, int]]:
    return {m: {"passed": k, "of": n} for m, (k, n) in cat.pass_counts.items()}


def outcomes_data(cat: CategoryCalibration) -> dict[str, Any] | None:
    if not cat.table_models or cat.joint == "independent":
        return None
    if cat.joint == "correlation":
        return {"correlation": cat.correlation} if cat.correlation else None
    return {
        "models": list(cat.table_models),
        "patterns": [{"passed": list(p), "count": c} for p, c in cat.patterns],
    }


def latency_data(fit: BandFit) -> dict[str, Any]:
    return {"e2e_s": fit.as_yaml()}


def shares(counts: list[int], decimals: int = SHARE_DECIMALS) -> list[float]:
    """Fractions proportional to ``counts``, rounded to ``decimals`` places and summing to exactly 1 (in decimal):
    largest remainders get the leftover units."""
    unit = 10**decimals
    total = sum(counts)
    raw = [c * unit / total for c in counts]
    floors = [int(r) for r in raw]
    left = unit - sum(floors)
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return [f / unit for f in floors]


# ---------------------------------------------------------------------------------------------------------
# A new worksheet


def _q(text: str) -> str:
    """A YAML scalar for a name: plain when that reads back as the same string, else double-quoted (JSON)."""
    if _PLAIN.match(text):
        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text)


def _num(x: float | int) -> str:
    if isinstance(x, int):
        return str(x)
    return repr(float(x)) if x != int(x) or abs(x) >= 1e15 else str(int(x))


def _flow(value: Any) -> str:
    """A small mapping/list/scalar in YAML flow style."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_q(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str):
        return _q(value)
    return _num(value)


def new_worksheet_text(cal: Calibration, name: str) -> str:
    """A complete, loadable worksheet from a calibration; every number not from the file is marked ``# GUESS``.

    Prices are 0 (a placeholder that validates): costs read as 0 until filled in. Traffic shares are the eval
    file's prompt shares; one static policy per model that has a pass rate in every category.
    """
    src = Path(cal.source).name
    out: list[str] = []
    w = out.append
    w(f"# Written by `routecalc calibrate evals {src}`. Pass rates, outcome tables (counts of prompts), token")
    w("# bands and latencies come from that file; every line marked GUESS is a placeholder to replace.")
    w("# Prices are 0 until you fill them in (price_in / price_out): until then every cost reads 0.")
    w("schema_version: 1")
    w(f"name: {_q(name)}")
    w("currency: USD              # GUESS: the currency of your prices")
    w("price_unit: per_1m")
    w("share_unit: fraction")
    w("volume:")
    w("  requests_per_month: 1000000   # GUESS: your monthly volume")
    w("")
    w("models:")
    for m in cal.models:
        w(f"  - name: {_q(m)}")
        if cal.eval_names.get(m, m) != m:
            w(f"    eval_name: {_q(cal.eval_names[m])}")
        w("    provider: unknown          # GUESS: openai, anthropic, ...")
        w("    price_in: 0                # GUESS: fill in (per 1M input tokens)")
        w("    price_out: 0               # GUESS: fill in (per 1M output tokens)")
        fit = cal.latency.get(m)
        if fit is not None:
            w(f"    latency: {_flow(latency_data(fit))}   # from {fit.n:,} rows of the eval file")
        else:
            w("    latency: {e2e_s: {p50: 1.0, p95: 4.0}}   # GUESS: the eval file has no latency")
    w("")
    w("tasks:")
    counts = [c.prompts for c in cal.categories]
    total = sum(counts)
    for cat, share in zip(cal.categories, shares(counts), strict=True):
        w(f"  - name: {_q(cat.name)}")
        w(
            f"    traffic_share: {_num(share)}   # GUESS: the eval file's share of prompts ({cat.prompts:,} of {total:,})"
        )
        for key, fit, default in (("tokens_in", cat.tokens_in, 1000), ("tokens_out", cat.tokens_out, 300)):
            if fit is not None:
                w(f"    {key}: {_flow(fit.as_yaml())}   # from {fit.n:,} rows")
            else:
                w(f"    {key}: {default}   # GUESS: the eval file has no {key}")
        w("    quality_threshold: 0.9   # GUESS: your target share of good answers")
        if cat.pass_counts:
            w("    pass_rates:")
            for m, data in pass_rates_data(cat).items():
                w(f"      {_q(m)}: {_flow(data)}")
        table = outcomes_data(cat)
        if table is not None and "correlation" in table:
            w(f"    outcomes: {_flow(table)}   # latent difficulty fitted to {cat.table_prompts:,} prompts' table")
        elif table is not None:
            note = f"{cat.table_prompts:,} prompts with an outcome for every model"
            if cat.left_out:
                note += f"; {cat.left_out:,} left out (some model has no outcome on them)"
            w(f"    outcomes:   # joint pass/fail: {note}")
            w(f"      models: {_flow(table['models'])}")
            w("      patterns:")
            for p in table["patterns"]:
                w(f"        - {_flow(p)}")
    w("")
    full = [m for m in cal.models if all(m in c.pass_counts for c in cal.categories)]
    if full:
        w("policies:   # one static policy per model; add a validator per category to try cascades")
        for m in full:
            w(f"  - name: {_q('all-' + m)}")
            w("    kind: static")
            w("    routes:")
            for cat in cal.categories:
                w(f"      {_q(cat.name)}: {_q(m)}")
    else:
        w("policies: []   # no model has a pass rate in every category")
    return "\n".join(out) + "\n"


def checked_new_worksheet(cal: Calibration, name: str) -> str:
    """:func:`new_worksheet_text`, read back strictly and validated (names from the file go through the
    worksheet's own rules); a WorksheetError names what the file put in that a worksheet cannot hold."""
    text = new_worksheet_text(cal, name)
    load_worksheet_text(text, f"worksheet calibrated from {cal.source}")
    return text


# ---------------------------------------------------------------------------------------------------------
# Updating a worksheet


@dataclass(frozen=True)
class RateChange:
    category: str
    model: str
    old: float | None
    new: float
    old_counts: tuple[int, int] | None
    new_counts: tuple[int, int]


@dataclass(frozen=True)
class Update:
    """What an update changes, and the new text. ``tables``: (category, 'added' | 'replaced' | 'removed', note)."""

    text: str
    rates: tuple[RateChange, ...]
    tables: tuple[tuple[str, str, str], ...]
    bands: tuple[tuple[str, str, str, str], ...]  # (category, field, old, new)
    latencies: tuple[tuple[str, str, str], ...]  # (model, old, new)
    skipped: tuple[str, ...] = field(default_factory=tuple)  # file categories not in the worksheet
    untouched: tuple[str, ...] = field(default_factory=tuple)  # worksheet categories not in the file

    @property
    def n_changes(self) -> int:
        changed_rates = sum(1 for r in self.rates if r.old != r.new or r.old_counts != r.new_counts)
        return changed_rates + len(self.tables) + len(self.bands) + len(self.latencies)


def _band_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_num(v) if isinstance(v, int | float) else v}" for k, v in value.items())
    return _num(value) if isinstance(value, int | float) else str(value)


def _rate_of(value: Any) -> tuple[float | None, tuple[int, int] | None]:
    if isinstance(value, dict) and "passed" in value and "of" in value:
        return value["passed"] / value["of"], (value["passed"], value["of"])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    return None, None


def _mentions(outcomes: Any, models: set[str]) -> bool:
    """Whether a written outcomes entry ties pass rates of any of ``models`` (a table or a conditional)."""
    if not isinstance(outcomes, dict):
        return False
    named = set(outcomes.get("models") or [])
    cond = outcomes.get("conditional")
    if isinstance(cond, dict):
        named |= {cond.get("model"), cond.get("given_failed")}
    return bool(named & models)


def flow_map(data: Mapping[str, Any]) -> Any:
    """A mapping for ruamel.yaml's round trip, written in flow style (``{p50: 1, p95: 2}``), nested too."""
    from ruamel.yaml.comments import CommentedMap

    m = CommentedMap()
    for k, v in data.items():
        m[k] = flow_seq(v) if isinstance(v, list) else (flow_map(v) if isinstance(v, dict) else v)
    m.fa.set_flow_style()
    return m


def flow_seq(items: list) -> Any:
    """A list for ruamel.yaml's round trip, written in flow style."""
    from ruamel.yaml.comments import CommentedSeq

    s = CommentedSeq(flow_map(v) if isinstance(v, dict) else v for v in items)
    s.fa.set_flow_style()
    return s


def round_trip(path: Path, what: str) -> tuple[Any, Any, dict[str, Any], str]:
    """(ruamel YAML instance, its round-trip document, the plain data, the text) of a worksheet whose tasks are
    written in the YAML (InputError for a CSV task table: ``what`` names the command in the message)."""
    from ruamel.yaml import YAML

    text = path.read_text(encoding="utf-8")
    plain = parse_yaml(text, str(path))
    if not isinstance(plain.get("tasks"), list):
        raise InputError(
            f"{path}: its tasks are in a CSV table ({plain.get('tasks')!r}); {what} -w edits task lists written "
            "in the YAML. Run without -w to get a worksheet with the calibrated tasks, and merge by hand."
        )
    mapping_indent, offset = _indents(text)
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=mapping_indent, sequence=offset + 2, offset=offset)
    return rt, rt.load(text), plain, text


def plan_update(path: Path, ws: Worksheet, cal: Calibration) -> Update:
    """The worksheet at ``path`` with the calibration applied (see module docstring); nothing is written here."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    rt, doc, plain, _ = round_trip(path, "calibrate")
    expected = copy.deepcopy(plain)

    def block_outcomes(data: Mapping[str, Any]) -> Any:
        m = CommentedMap()
        m["models"] = flow_seq(data["models"])
        m["patterns"] = CommentedSeq(flow_map(p) for p in data["patterns"])
        return m

    rates: list[RateChange] = []
    tables: list[tuple[str, str, str]] = []
    bands: list[tuple[str, str, str, str]] = []
    by_name = {t.get("name"): i for i, t in enumerate(plain["tasks"]) if isinstance(t, dict)}
    for cat in cal.categories:
        i = by_name.get(cat.name)
        if i is None:
            continue
        node, exp = doc["tasks"][i], expected["tasks"][i]
        old_rates = exp.get("pass_rates") or {}
        new_rates = pass_rates_data(cat)
        if new_rates:
            if "pass_rates" not in node or not isinstance(node["pass_rates"], dict):
                node["pass_rates"] = CommentedMap()
                exp["pass_rates"] = {}
            for m, data in new_rates.items():
                old, old_counts = _rate_of(old_rates.get(m))
                rates.append(
                    RateChange(cat.name, m, old, data["passed"] / data["of"], old_counts, (data["passed"], data["of"]))
                )
                node["pass_rates"][m] = flow_map(data)
                exp["pass_rates"][m] = dict(data)
        table = outcomes_data(cat)
        old_out = exp.get("outcomes")
        if table is not None and old_out == table:
            pass  # the same table (or correlation) as written: nothing to change
        elif table is not None:
            note = f"{cat.table_prompts:,} prompts, {len(cat.table_models)} models"
            if cat.left_out:
                note += f", {cat.left_out:,} left out"
            if "correlation" in table:
                note += f", latent difficulty rho {table['correlation']:g}"
            tables.append((cat.name, "replaced" if old_out is not None else "added", note))
            node["outcomes"] = block_outcomes(table) if "patterns" in table else flow_map(table)
            exp["outcomes"] = table
        elif old_out is not None and _mentions(old_out, set(new_rates)):
            tables.append((cat.name, "removed", "it tied pass rates that calibration replaced"))
            del node["outcomes"]
            del exp["outcomes"]
        for key, fit in (("tokens_in", cat.tokens_in), ("tokens_out", cat.tokens_out)):
            if fit is None:
                continue
            new = fit.as_yaml()
            if exp.get(key) != new:
                bands.append((cat.name, key, _band_text(exp.get(key)), _band_text(new)))
                node[key] = flow_map(new) if isinstance(new, dict) else new
                exp[key] = new
    latencies: list[tuple[str, str, str]] = []
    model_ix = {m.get("name"): i for i, m in enumerate(plain.get("models") or []) if isinstance(m, dict)}
    for m, fit in cal.latency.items():
        i = model_ix.get(m)
        if i is None:
            continue
        new = latency_data(fit)
        old = expected["models"][i].get("latency")
        if old != new:
            latencies.append((m, _flow(old) if old is not None else "—", _flow(new)))
            doc["models"][i]["latency"] = flow_map(new)
            expected["models"][i]["latency"] = new
    buf = io.StringIO()
    rt.dump(doc, buf)
    new_text = buf.getvalue()
    _check_edit(new_text, expected, path)
    file_cats = {c.name for c in cal.categories}
    return Update(
        text=new_text,
        rates=tuple(rates),
        tables=tuple(tables),
        bands=tuple(bands),
        latencies=tuple(latencies),
        skipped=tuple(c.name for c in cal.categories if c.name not in by_name),
        untouched=tuple(str(n) for n in by_name if n not in file_cats),
    )


def _indents(text: str) -> tuple[int, int]:
    """(mapping indent, offset of a block sequence's dash) as the file writes them (default 2, 2)."""
    mapping = re.search(r"^[^\s#][^:\n]*:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*( +)[^\s#-]", text, re.M)
    dash = re.search(r"^[^\s#][^:\n]*:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*( *)- ", text, re.M)
    return (len(mapping.group(1)) if mapping else 2), (len(dash.group(1)) if dash else 2)


def _check_edit(new_text: str, expected: Any, path: Path) -> None:
    """The edited text must read back (strictly) as exactly the intended data, and validate."""
    got = parse_yaml(new_text, f"{path} (updated)")
    if got != expected:
        raise RoutecalcError(
            f"{path}: internal error: the edited worksheet does not read back as intended; nothing written"
        )
    validate_worksheet(got, f"{path} (updated)", base_dir=path.parent)
