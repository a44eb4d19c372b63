"""Prices and context windows from a LiteLLM-format price map (``model_prices_and_context_window.json``).

The map gives USD per token (``input_cost_per_token``, ``output_cost_per_token``, ``cache_read_input_token_cost``)
and ``max_input_tokens`` per model key. Here it is read, matched to a worksheet's models, converted to the
worksheet's ``price_unit`` (and currency, only with an explicit rate), and written back into the user's YAML with
targeted edits, so comments and layout survive. litellm itself is never imported: its bundled copy of the map is
found on disk, which is fast and works offline.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from routecalc import limits
from routecalc.errors import InputError, PriceSourceError
from routecalc.format import printable
from routecalc.limits import MAX_DEPTH, MAX_INT_DIGITS, PRICE_MAX_PER_1M, short_repr
from routecalc.worksheet import ModelSpec, Worksheet, parse_yaml, read_text, validate_worksheet

BUNDLED_FILE = "model_prices_and_context_window_backup.json"
SAMPLE_SPEC = "sample_spec"
SOURCE_CURRENCY = "USD"  # LiteLLM maps are in US dollars
PRICE_FIELDS = ("price_in", "price_out", "price_cache")
FIELDS = (*PRICE_FIELDS, "context_window")
# worksheet field -> price-map field
MAP_FIELD = {
    "price_in": "input_cost_per_token",
    "price_out": "output_cost_per_token",
    "price_cache": "cache_read_input_token_cost",
    "context_window": "max_input_tokens",
}
# price-map fields the estimate has no place for (one input, output and cache-read price per token): prices of
# long prompts above a context size, of prompt-cache writes, of reasoning tokens. Listed when they differ from
# the price the estimate charges for the same tokens (alternative service tiers such as batches or priority are not)
IGNORED_FIELDS = (
    (re.compile(r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost)_above_\d+k_tokens$"), None),
    (re.compile(r"^cache_creation_input_token_cost(_above_1hr)?$"), "input_cost_per_token"),
    (re.compile(r"^output_cost_per_reasoning_token$"), "output_cost_per_token"),
)
SIGNIFICANT = 12  # per-unit prices are rounded to this many significant digits (0.15000000000000002 -> 0.15)
BUNDLED = "bundled"  # as a source: the installed litellm package's own copy of the map
SHOW_FIELDS = (
    "litellm_provider",
    "mode",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "max_input_tokens",
    "max_output_tokens",
)


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
        for fld in MAP_FIELD.values():
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


def price_source(path: str | Path | None) -> tuple[Path, str]:
    """The price map to read (a file; None or ``bundled``: litellm's bundled copy) and a label saying which."""
    if path is not None and str(path) != BUNDLED:
        return Path(path), str(path)
    found = find_bundled_price_map()
    return found, f"litellm {bundled_litellm_version() or '(unknown version)'} bundled map"


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
# What would change


@dataclass(frozen=True)
class FieldChange:
    """One worksheet field of one model: its current value and the price map's (in worksheet units)."""

    field: str  # price_in | price_out | price_cache | context_window
    old: float | int | None  # None: the worksheet does not set it
    new: float | int | None  # None only in a diff, where a newer worksheet may drop a field

    @property
    def pct(self) -> float | None:
        """Relative change in percent, None when there was no old value (or it was 0)."""
        if self.old is None or self.new is None or self.old == 0:
            return None
        return (self.new - self.old) / self.old * 100


@dataclass(frozen=True)
class PriceChange:
    """What the price map says about one worksheet model.

    ``status``: ``changed`` (``fields`` lists only what differs), ``unchanged``, ``missing`` (no map entry:
    prices kept, with a warning) or ``unpriced`` (an entry without usable prices: kept, with a warning).
    """

    model: str
    key: str | None
    status: str
    fields: tuple[FieldChange, ...] = ()
    note: str | None = None
    ignored: tuple[str, ...] = ()  # map fields the estimate cannot use (see IGNORED_FIELDS)

    def get(self, name: str) -> FieldChange | None:
        for f in self.fields:
            if f.field == name:
                return f
        return None


def per_unit(per_token: float, tokens_per_unit: float, rate: float = 1.0) -> float:
    """Per-token USD -> per ``price_unit`` in the worksheet currency, rounded so float noise is no change.

    ``4e-07 * 1e6 = 0.39999999999999997`` -> ``0.4``.
    """
    value = per_token * tokens_per_unit * rate
    return float(f"{value:.{SIGNIFICANT}g}")


def _same(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


def check_currency(ws: Worksheet, rate: float | None) -> float:
    """The USD -> worksheet-currency rate to use; a non-USD worksheet without ``rate`` is refused."""
    if rate is not None and (not math.isfinite(rate) or rate <= 0):
        raise InputError(f"--rate must be a positive number (got {rate:g})")
    if ws.currency == SOURCE_CURRENCY:
        if rate is not None and rate != 1:
            raise InputError(
                f"the worksheet is in {SOURCE_CURRENCY}, like LiteLLM price maps: --rate is only for worksheets "
                "in another currency"
            )
        return 1.0
    if rate is None:
        raise PriceSourceError(
            f"LiteLLM price maps are in {SOURCE_CURRENCY} but the worksheet is in {ws.currency}: refusing to mix "
            f"currencies. Pass --rate R (1 {SOURCE_CURRENCY} = R {ws.currency})."
        )
    return rate


def price_updates(ws: Worksheet, price_map: dict[str, dict[str, Any]], rate: float | None = None) -> list[PriceChange]:
    """For every worksheet model, what the map would change (worksheet price unit and currency).

    A model the map lacks is ``missing`` (never a zero price); a field the map lacks is left as it is; an entry
    whose input and output prices are both 0 (free, or a placeholder) is ``unpriced`` and changes nothing.
    """
    rate = check_currency(ws, rate)
    k = ws.tokens_per_price_unit
    out: list[PriceChange] = []
    absurd: list[str] = []
    for spec in ws.models:
        key = lookup_key(price_map, spec)
        if key is None:
            out.append(PriceChange(spec.name, None, "missing", note=_missing_note(price_map, spec)))
            continue
        entry = price_map[key]
        p_in, p_out = entry.get(MAP_FIELD["price_in"]), entry.get(MAP_FIELD["price_out"])
        if p_in is None or p_out is None or (p_in == 0 and p_out == 0):
            what = "no input/output price" if p_in is None or p_out is None else "input and output prices of 0"
            out.append(
                PriceChange(spec.name, key, "unpriced", note=f"map entry {short_repr(key)} has {what}; prices kept")
            )
            continue
        fields = []
        for fld in FIELDS:
            raw = entry.get(MAP_FIELD[fld])
            if raw is None:
                continue
            old = getattr(spec, fld)
            if fld == "context_window":
                new: float | int = int(raw)
                if new <= 0 or old == new:
                    continue
            else:
                new = per_unit(raw, k, rate)
                per_1m = new * 1e6 / k
                if not math.isfinite(per_1m) or per_1m > PRICE_MAX_PER_1M:
                    absurd.append(
                        f"{printable(key)}.{MAP_FIELD[fld]}: {raw:g} per token is {per_1m:,.0f} {ws.currency} per 1M "
                        f"tokens (for {spec.name})"
                    )
                    continue
                if _same(old, new):
                    continue
            fields.append(FieldChange(fld, old, new))
        status = "changed" if fields else "unchanged"
        out.append(PriceChange(spec.name, key, status, tuple(fields), ignored=ignored_fields(entry)))
    if absurd:
        raise PriceSourceError(
            f"implausible prices in the price map (at most {PRICE_MAX_PER_1M:,.0f} per 1M tokens, one currency unit "
            "per token; is --rate right?):\n" + "\n".join(f"  - {a}" for a in absurd)
        )
    return out


def ignored_fields(entry: dict[str, Any]) -> tuple[str, ...]:
    """The fields of a price-map entry the estimate ignores although they would change a bill: a price above a
    context size (``..._above_200k_tokens``) that differs from the base price, a cache-write price that differs
    from the input price, a reasoning-token price that differs from the output price."""
    out = []
    for name, value in entry.items():
        if not _number_ok(value) or value == 0:
            continue
        for pattern, same_as in IGNORED_FIELDS:
            if not pattern.match(name):
                continue
            base = entry.get(same_as or name.split("_above_")[0])
            if not _same(base if _number_ok(base) else None, value):
                out.append(name)
    return tuple(sorted(out))


def warnings(changes: list[PriceChange]) -> list[str]:
    """One sentence per model the map could not price, and per model with prices the estimate ignores."""
    out = [f"{c.model}: {c.note}" for c in changes if c.status in ("missing", "unpriced")]
    out += [
        f"{c.model}: the price map also has {', '.join(c.ignored)} (entry {c.key}); the estimate uses one input, "
        "output and cached-input price per token and ignores them, so long prompts, prompt-cache writes or "
        "reasoning tokens may cost more than estimated."
        for c in changes
        if c.ignored
    ]
    return out


def apply_changes(ws: Worksheet, changes: list[PriceChange]) -> Worksheet:
    """The worksheet with the changed fields replaced, in memory (for ``diff --prices``)."""
    by_model = {c.model: c for c in changes if c.status == "changed"}
    models = []
    for m in ws.models:
        c = by_model.get(m.name)
        models.append(m.model_copy(update={f.field: f.new for f in c.fields}) if c else m)
    return ws.model_copy(update={"models": models})


def reprice(ws: Worksheet, source: str | Path | None, rate: float | None = None) -> tuple[Worksheet, list[str], str]:
    """``ws`` with prices from a price map, in memory (for ``diff --prices``): (worksheet, warnings, source label).

    The re-priced worksheet is validated again like a file would be (``model_copy`` checks nothing), so a price
    the map makes implausible is refused before anything is evaluated; new plausibility warnings are returned.
    """
    from routecalc.worksheet import worksheet_warnings

    path, label = price_source(source)
    changes = price_updates(ws, load_price_map(path), rate)
    repriced = validate_worksheet(apply_changes(ws, changes).as_document(), f"{ws.name} re-priced from {label}")
    before = set(worksheet_warnings(ws))
    return repriced, warnings(changes) + [w for w in worksheet_warnings(repriced) if w not in before], label


@dataclass(frozen=True)
class WorksheetUpdate:
    """What ``prices update`` would write: the per-model changes and the edited worksheet text."""

    changes: list[PriceChange]
    text: str
    warnings: list[str]

    @property
    def n_values(self) -> int:
        return sum(len(c.fields) for c in self.changes)


def plan_update(
    worksheet_path: Path, ws: Worksheet, price_map: dict[str, dict[str, Any]], rate: float | None, target: Path | None
) -> WorksheetUpdate:
    """Edit the changed values into the worksheet file's text and check the result loads at ``target``.

    The file is read as bytes so its own line endings survive; the result is validated as if it were at
    ``target`` (or in place), so a relative task-table path that would break there is caught before writing.
    """
    from routecalc.worksheet import worksheet_warnings

    text = read_text(worksheet_path)
    changes = price_updates(ws, price_map, rate)
    new_text = update_worksheet_text(text, changes, str(worksheet_path))
    check = target or worksheet_path
    updated = validate_worksheet(parse_yaml(new_text, str(check)), str(check), base_dir=check.parent)
    before = set(worksheet_warnings(ws))
    new_warnings = [w for w in worksheet_warnings(updated) if w not in before]
    return WorksheetUpdate(changes, new_text, warnings(changes) + new_warnings)


# ---------------------------------------------------------------------------------------------------------
# Writing the changes into the user's YAML


def format_number(value: float | int, old_text: str | None = None) -> str:
    """A YAML number PyYAML reads back as the same value: no exponent (``1e-07`` would be a string), and
    the old text's number of decimals kept when the new value fits it (``2.00`` -> ``2.50``)."""
    if isinstance(value, int):
        return str(value)
    if old_text is not None:
        m = re.fullmatch(r"[0-9]+\.([0-9]+)", old_text)
        if m:
            digits = len(m.group(1))
            if math.isclose(round(value, digits), value, rel_tol=1e-12, abs_tol=1e-15):
                return f"{value:.{digits}f}"
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


def _mapping_get(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _line_end(text: str, index: int) -> int:
    """Index of the line break (``\n`` or ``\r\n``) ending the line that holds ``index``."""
    end = text.find("\n", index)
    if end < 0:
        return len(text)
    return end - 1 if end > 0 and text[end - 1] == "\r" else end


def update_worksheet_text(yaml_text: str, changes: list[PriceChange], source: str = "worksheet") -> str:
    """Rewrite the changed fields in the worksheet's own text, leaving every other byte as it was.

    Values are replaced where they stand (the YAML parser's positions of each value); a field the model does
    not have yet is added under its siblings (block style) or inside its ``{...}`` (flow style). The result is
    parsed again and must equal the old data with exactly these fields changed, or nothing is written.
    """
    changed = {c.model: c for c in changes if c.status == "changed"}
    if not changed:
        return yaml_text
    try:
        root = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({exc})") from None
    models = _mapping_get(root, "models") if isinstance(root, yaml.MappingNode) else None
    if models is None or not isinstance(models[1], yaml.SequenceNode):
        raise InputError(f"{source}: no models: list to update")
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), character offsets
    for item in models[1].value:
        if not isinstance(item, yaml.MappingNode):
            continue
        name = _mapping_get(item, "name")
        if name is None or not isinstance(name[1], yaml.ScalarNode) or name[1].value not in changed:
            continue
        change = changed[name[1].value]
        for fc in change.fields:
            found = _mapping_get(item, fc.field)
            if found is not None:
                value_node = found[1]
                old_text = yaml_text[value_node.start_mark.index : value_node.end_mark.index]
                edits.append((value_node.start_mark.index, value_node.end_mark.index, format_number(fc.new, old_text)))
            else:
                edits.append(_insertion(yaml_text, item, fc))
    new_text = yaml_text
    for start, end, repl in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        new_text = new_text[:start] + repl + new_text[end:]
    _check_edit(yaml_text, new_text, changed, source)
    return new_text


def _insertion(text: str, item: yaml.MappingNode, fc: FieldChange) -> tuple[int, int, str]:
    """Where and what to insert for a field the model block does not have yet."""
    anchor = None
    for fld in reversed(FIELDS[: FIELDS.index(fc.field)]):  # after its nearest preceding sibling
        anchor = _mapping_get(item, fld)
        if anchor is not None:
            break
    if anchor is None:
        anchor = item.value[-1]
    key_node, value_node = anchor
    sibling = text[value_node.start_mark.index : value_node.end_mark.index]
    value = format_number(fc.new, sibling if isinstance(value_node, yaml.ScalarNode) else None)
    if item.flow_style:
        pos = value_node.end_mark.index
        return pos, pos, f", {fc.field}: {value}"
    if value_node.end_mark.line != key_node.start_mark.line:  # a nested block: go after all of it
        pos = value_node.end_mark.index
        while pos > 0 and text[pos - 1] in " \n":
            pos -= 1
    else:
        pos = value_node.end_mark.index
    pos = _line_end(text, pos)
    newline = "\r\n" if text.startswith("\r\n", pos) else "\n"
    indent = " " * key_node.start_mark.column
    return pos, pos, f"{newline}{indent}{fc.field}: {value}"


def _check_edit(old_text: str, new_text: str, changed: dict[str, PriceChange], source: str) -> None:
    """The edited text must parse to the old data with exactly the intended fields changed."""
    expected = copy.deepcopy(parse_yaml(old_text, source))
    for m in expected.get("models", []):
        if isinstance(m, dict) and m.get("name") in changed:
            for fc in changed[m["name"]].fields:
                m[fc.field] = fc.new
    try:
        actual = parse_yaml(new_text, source)
    except InputError:
        actual = None
    if actual != expected:
        raise InputError(
            f"{source}: cannot update the prices in place without changing something else (YAML anchors, "
            "aliases or merge keys in models:?). Edit the values shown above by hand."
        )
