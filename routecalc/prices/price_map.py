"""A LiteLLM-format price map (``model_prices_and_context_window.json``): finding the bundled copy, reading it,
matching worksheet models to its keys, and what an entry says in worksheet units.

The map gives USD per token and ``max_input_tokens`` per model key. Read (``MAP_FIELD``): input, output,
prompt-cache read and write, reasoning, batch input and output prices, and the lowest long-context tier
(``input_cost_per_token_above_200k_tokens``, ... and its cache prices). Every other cost field of an entry is
listed by :func:`unused_fields` (priority and flex tiers, per-query and per-image prices, ...), so it is reported,
not dropped silently; a batch cache price is checked against the batch discount routecalc applies to it.
litellm itself is never imported: its bundled copy of the map is found on disk, which is fast and works offline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import re
from pathlib import Path
from typing import Any

from routecalc import limits
from routecalc.errors import PriceSourceError
from routecalc.format import printable
from routecalc.limits import MAX_DEPTH, MAX_INT_DIGITS, short_repr
from routecalc.worksheet import ModelSpec
from routecalc.worksheet.pricing import LONG, MODEL_PRICE_FIELDS

BUNDLED_FILE = "model_prices_and_context_window_backup.json"
SAMPLE_SPEC = "sample_spec"
SOURCE_CURRENCY = "USD"  # LiteLLM maps are in US dollars
# worksheet field -> price-map field (long_context.*: LONG_MAP_FIELD, at the entry's lowest threshold)
MAP_FIELD = {
    "price_in": "input_cost_per_token",
    "price_out": "output_cost_per_token",
    "price_cache": "cache_read_input_token_cost",
    "price_cache_write": "cache_creation_input_token_cost",
    "price_reasoning": "output_cost_per_reasoning_token",
    "price_in_batch": "input_cost_per_token_batches",
    "price_out_batch": "output_cost_per_token_batches",
    "context_window": "max_input_tokens",
}
LONG_MAP_FIELD = {
    "price_in": "input_cost_per_token_above_{k}k_tokens",
    "price_out": "output_cost_per_token_above_{k}k_tokens",
    "price_cache": "cache_read_input_token_cost_above_{k}k_tokens",
    "price_cache_write": "cache_creation_input_token_cost_above_{k}k_tokens",
}
LONG_KEY = re.compile(r"^(?:input|output)_cost_per_token_above_(\d+)k_tokens$")
PRICE_FIELDS = (*MODEL_PRICE_FIELDS, *(f"{LONG}.{f}" for f in LONG_MAP_FIELD))
FIELDS = (*MODEL_PRICE_FIELDS, f"{LONG}.above_tokens", *(f"{LONG}.{f}" for f in LONG_MAP_FIELD), "context_window")
MAP_URL = "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
SIGNIFICANT = 12  # per-unit prices are rounded to this many significant digits (0.15000000000000002 -> 0.15)
BUNDLED = "bundled"  # as a source: the installed litellm package's own copy of the map
SHOW_FIELDS = (
    "litellm_provider",
    "mode",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
    "input_cost_per_token_batches",
    "output_cost_per_token_batches",
    "max_input_tokens",
    "max_output_tokens",
)  # and every long-context price (LONG_KEY and its cache prices)


# ---------------------------------------------------------------------------------------------------------
# Finding and reading a price map


def find_bundled_price_map() -> Path:
    """Path of the price map bundled in an installed litellm package, found without importing litellm."""
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec("litellm")  # a top-level name: finds, does not import
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for loc in spec.submodule_search_locations or []:
            candidates.append(Path(loc) / BUNDLED_FILE)
        if spec.origin:
            candidates.append(Path(spec.origin).parent / BUNDLED_FILE)
    try:
        files = importlib.metadata.files("litellm") or []
        for f in files:
            if f.name == BUNDLED_FILE and f.parent.name == "litellm":
                candidates.append(Path(str(f.locate())))
    except importlib.metadata.PackageNotFoundError:
        pass
    for path in candidates:
        if path.is_file():
            return path
    where = f" (litellm found at {candidates[0].parent}, but without {BUNDLED_FILE})" if candidates else ""
    raise PriceSourceError(
        f"no bundled LiteLLM price map{where}: install it with `pip install 'routecalc[litellm]'`, "
        f"or pass --from FILE with a model_prices_and_context_window.json (e.g. a newer download)"
    )


def bundled_litellm_version() -> str | None:
    """Version of the installed litellm distribution (metadata only, no import), or None."""
    try:
        return importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return None


def _number_ok(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return 0 <= value <= limits.MAX_NUMBER  # math.isfinite(10**400) raises OverflowError
    return math.isfinite(value) and 0 <= value <= limits.MAX_NUMBER


def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text):,} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _depth_ok(data: Any) -> bool:
    """Nesting at most ``MAX_DEPTH`` levels (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True


def parse_json(text: str, source: str) -> Any:
    """JSON, bounded: integers of at most 100 digits, nesting of at most 64 levels; anything the decoder refuses
    (bad syntax, a 5,000-digit integer, 1,000 levels of nesting) is a PriceSourceError, never a traceback."""
    try:
        data = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise PriceSourceError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:
        raise PriceSourceError(f"{source}: not valid JSON ({exc})") from None
    except RecursionError:
        raise PriceSourceError(f"{source}: not valid JSON (nested more than {MAX_DEPTH} levels deep)") from None
    if not _depth_ok(data):
        raise PriceSourceError(f"{source}: not valid JSON (nested more than {MAX_DEPTH} levels deep)")
    return data


def load_price_map(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a LiteLLM-format price map: ``{model key: entry}`` without ``sample_spec``.

    The fields routecalc uses must be non-negative numbers wherever present; any other value is a
    PriceSourceError listing every bad entry (a price map is an input like the worksheet: strict, all at once).
    """
    path = Path(path)
    text = limits.read_text(path, limits.MAX_PRICE_MAP_BYTES, PriceSourceError, "price map")
    data = parse_json(text, str(path))
    if not isinstance(data, dict):
        raise PriceSourceError(f"{path}: a price map is a JSON object of model name -> prices")
    out: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for key, entry in data.items():
        if key == SAMPLE_SPEC:
            continue
        shown = printable(key if len(key) <= 60 else key[:57] + "...")
        if not isinstance(entry, dict):
            problems.append(f"{shown}: entry is not an object")
            continue
        for fld in (*MAP_FIELD.values(), *(k for k in entry if _read_long(k))):
            if fld in entry and not _number_ok(entry[fld]):
                problems.append(f"{shown}.{fld}: not a non-negative number up to 1e15 ({short_repr(entry[fld])})")
        out[key] = entry
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise PriceSourceError(
            f"{path}: {len(problems)} bad price entr{'y' if len(problems) == 1 else 'ies'}\n{shown}{more}"
        )
    return out


def _read_long(key: str) -> bool:
    """A long-context price key routecalc may read (any threshold)."""
    return bool(
        re.match(
            r"^(?:input|output|cache_read_input_token|cache_creation_input_token)_cost(?:_per_token)?_above_\d+k_tokens$",
            key,
        )
    )


def price_source(path: str | Path | None) -> tuple[Path, str]:
    """The price map to read (a file; None or ``bundled``: litellm's bundled copy) and a label saying which."""
    if path is not None and str(path) != BUNDLED:
        return Path(path), str(path)
    found = find_bundled_price_map()
    return found, f"litellm {bundled_litellm_version() or '(unknown version)'} bundled map"


def is_bundled(path: str | Path | None) -> bool:
    return path is None or str(path) == BUNDLED


def source_record(path: str | Path | None, today: dt.date) -> dict[str, Any]:
    """What ``prices_from`` records for a price map: ``source``, ``version`` (the litellm version of a bundled map;
    ``sha256:<12 hex>`` of a file's bytes) and ``date`` (the day the prices were applied)."""
    if is_bundled(path):
        return {"source": "litellm bundled price map", "version": bundled_litellm_version() or "unknown", "date": today}
    digest = hashlib.sha256(limits.read_bytes(Path(str(path)), limits.MAX_PRICE_MAP_BYTES)).hexdigest()
    return {"source": printable(str(path)), "version": f"sha256:{digest[:12]}", "date": today}


def search(price_map: dict[str, dict[str, Any]], queries: list[str], limit: int = 25) -> tuple[dict, list, list]:
    """Entries for ``queries``: an exact key, else every key containing the query (the ``limit`` shortest).

    Returns ``(entries by key, queries with no match, notes about truncated matches)``.
    """
    rows: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    notes: list[str] = []
    for query in queries:
        if query in price_map:
            rows[query] = price_map[query]
            continue
        hits = sorted((k for k in price_map if query.lower() in k.lower()), key=lambda k: (len(k), k))
        if not hits:
            missing.append(query)
        rows.update({k: price_map[k] for k in hits[:limit]})
        if len(hits) > limit:
            notes.append(f"{len(hits)} keys contain {query!r}; showing the {limit} shortest.")
    return rows, missing, notes


# ---------------------------------------------------------------------------------------------------------
# Matching worksheet models to map entries


def _provider_of(spec: ModelSpec) -> str:
    if spec.litellm_model and "/" in spec.litellm_model:
        return spec.litellm_model.split("/", 1)[0].lower()
    return spec.provider.lower()


def _candidates(spec: ModelSpec) -> list[str]:
    """Keys to try, in order: ``litellm_model``, that without its provider prefix, the worksheet name."""
    names = []
    if spec.litellm_model:
        names.append(spec.litellm_model)
        if "/" in spec.litellm_model:
            names.append(spec.litellm_model.split("/", 1)[1])
    names.append(spec.name)
    return list(dict.fromkeys(names))


def _other_provider(entry: dict[str, Any], provider: str) -> str | None:
    """The entry's ``litellm_provider`` when it is not ``provider`` (None when it matches or is not given)."""
    entry_provider = entry.get("litellm_provider")
    if isinstance(entry_provider, str) and entry_provider.lower() != provider:
        return entry_provider
    return None


def lookup_key(price_map: dict[str, dict[str, Any]], spec: ModelSpec) -> str | None:
    """The map key for a worksheet model: its ``litellm_model``, then that without the provider prefix, then
    the worksheet name. The last two must be priced for the same provider (``litellm_provider``), so an
    ``azure/gpt-4.1`` deployment is not silently given OpenAI's price for ``gpt-4.1``."""
    provider = _provider_of(spec)
    for i, name in enumerate(_candidates(spec)):
        entry = price_map.get(name)
        if entry is None:
            continue
        exact = i == 0 and name == spec.litellm_model
        if exact or _other_provider(entry, provider) is None:
            return name
    return None


def _missing_note(price_map: dict[str, dict[str, Any]], spec: ModelSpec) -> str:
    """Why a model has no map entry, and the nearest keys, as one sentence."""
    provider = _provider_of(spec)
    tried = _candidates(spec)
    note = f"not in the price map (looked for {', '.join(repr(t) for t in tried)})"
    for name in tried:
        other = _other_provider(price_map.get(name, {}), provider)
        if other is not None:
            note += f"; {name!r} is priced for provider {other!r}, not {provider!r}"
    hint = [k for k in near_keys(price_map, spec.litellm_model or spec.name) if k not in tried]
    if hint:
        note += f"; similar keys: {', '.join(hint)} (if one is the model you call, set litellm_model to it)"
    return note + "; its prices are kept"


def lookup(price_map: dict[str, dict[str, Any]], spec: ModelSpec) -> dict[str, Any] | None:
    """The price-map entry for a worksheet model (see ``lookup_key``), or None."""
    key = lookup_key(price_map, spec)
    return None if key is None else price_map[key]


def near_keys(price_map: dict[str, dict[str, Any]], name: str, limit: int = 5) -> list[str]:
    """Map keys that contain ``name`` (without any provider prefix), shortest first: 'did you mean' hints."""
    needle = name.split("/", 1)[-1].lower()
    hits = [k for k in price_map if needle in k.lower()]
    return sorted(hits, key=lambda k: (len(k), k))[:limit]


# ---------------------------------------------------------------------------------------------------------
# What an entry says


def per_unit(per_token: float, tokens_per_unit: float, rate: float = 1.0) -> float:
    """Per-token USD -> per ``price_unit`` in the worksheet currency, rounded so float noise is no change.

    ``4e-07 * 1e6 = 0.39999999999999997`` -> ``0.4``.
    """
    value = per_token * tokens_per_unit * rate
    return float(f"{value:.{SIGNIFICANT}g}")


def long_threshold(entry: dict[str, Any]) -> int | None:
    """The entry's lowest long-context threshold in thousands of tokens (``..._above_200k_tokens`` -> 200)."""
    found = [int(m.group(1)) for k in entry if (m := LONG_KEY.match(k))]
    return min(found) if found else None


def map_keys(entry: dict[str, Any]) -> dict[str, str]:
    """Worksheet field -> the entry's key for it, for the fields the entry has (see ``MAP_FIELD``)."""
    keys = {f: k for f, k in MAP_FIELD.items() if k in entry}
    k = long_threshold(entry)
    if k is not None:
        keys[f"{LONG}.above_tokens"] = LONG_MAP_FIELD["price_in"].format(k=k)
        keys |= {f"{LONG}.{f}": key.format(k=k) for f, key in LONG_MAP_FIELD.items() if key.format(k=k) in entry}
    return keys


def map_values(entry: dict[str, Any], tokens_per_unit: float, rate: float) -> dict[str, float | int]:
    """What the entry says, per worksheet field, in worksheet units (prices) or tokens.

    A long-context tier needs an input and an output price: one the entry omits is its standard price.
    """
    keys = map_keys(entry)
    out: dict[str, float | int] = {}
    for fld, key in keys.items():
        if fld == "context_window":
            out[fld] = int(entry[key])
        elif fld == f"{LONG}.above_tokens":
            out[fld] = int(long_threshold(entry) or 0) * 1000
        else:
            out[fld] = per_unit(entry[key], tokens_per_unit, rate)
    if f"{LONG}.above_tokens" in out:
        for side in ("price_in", "price_out"):
            if f"{LONG}.{side}" not in out and side in out:
                out[f"{LONG}.{side}"] = out[side]
        if f"{LONG}.price_in" not in out or f"{LONG}.price_out" not in out:  # no standard price either: no tier
            out = {f: v for f, v in out.items() if not f.startswith(LONG + ".")}
    return out


def unused_fields(entry: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The entry's cost fields the estimate does not read, and notes on the ones it derives.

    A ``*_batches`` price of a field routecalc reads is derived (the batch discount of input, or of output,
    applied to it): it is unused only when the entry prices it differently.
    """
    used = set(map_keys(entry).values())
    unused: list[str] = []
    notes: list[str] = []
    factor = {}
    for side in ("input", "output"):
        std, batch = entry.get(f"{side}_cost_per_token"), entry.get(f"{side}_cost_per_token_batches")
        if isinstance(std, int | float) and isinstance(batch, int | float) and std > 0:
            factor[side] = batch / std
    for key in sorted(k for k in entry if "cost" in k and k not in used):
        base = key.removesuffix("_batches")
        side = "output" if base.startswith("output_") else "input"
        if key != base and base in used and side in factor and _number_ok(entry[key]) and _number_ok(entry[base]):
            derived = entry[base] * factor[side]
            if math.isclose(entry[key], derived, rel_tol=1e-6, abs_tol=1e-15):
                continue  # routecalc bills the same
            notes.append(
                f"{key} is {entry[key] * 1e6:.6g} USD per 1M tokens; routecalc bills {derived * 1e6:.6g} (the batch "
                f"discount of {side}, {factor[side]:.4g}x, applied to {base})"
            )
        unused.append(key)
    return tuple(unused), tuple(notes)
