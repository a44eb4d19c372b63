"""Refreshing a worksheet's prices from a LiteLLM-format price map (:mod:`routecalc.prices.price_map` reads it).

The map is matched to a worksheet's models, converted to the worksheet's ``price_unit`` (and currency, only with
an explicit rate), and written back into the user's YAML with targeted edits (:mod:`routecalc.prices.yaml_edit`), so
comments and layout survive; ``prices_from`` records the map, its version and the date. A model marked
``price_source: manual`` keeps its prices (shown as overridden); map fields the estimate does not use are
reported; a model the map lacks keeps its prices, with a warning that says how to get a newer map.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routecalc.errors import InputError, PriceSourceError
from routecalc.format import printable
from routecalc.limits import PRICE_MAX_PER_1M, short_repr
from routecalc.prices.price_map import (
    BUNDLED,
    BUNDLED_FILE,
    FIELDS,
    MAP_FIELD,
    MAP_URL,
    PRICE_FIELDS,
    SHOW_FIELDS,
    SOURCE_CURRENCY,
    _missing_note,
    bundled_litellm_version,
    find_bundled_price_map,
    is_bundled,
    load_price_map,
    long_threshold,
    lookup,
    lookup_key,
    map_keys,
    map_values,
    near_keys,
    parse_json,
    per_unit,
    price_source,
    search,
    source_record,
    unused_fields,
)
from routecalc.prices.yaml_edit import format_number, update_worksheet_text
from routecalc.worksheet import ModelSpec, Worksheet, load_worksheet_text, read_text, validate_worksheet
from routecalc.worksheet.pricing import LONG

__all__ = [  # re-exported: reading the map and editing YAML live in their own modules
    "BUNDLED",
    "BUNDLED_FILE",
    "MAP_FIELD",
    "SHOW_FIELDS",
    "bundled_litellm_version",
    "find_bundled_price_map",
    "format_number",
    "is_bundled",
    "load_price_map",
    "long_threshold",
    "lookup",
    "lookup_key",
    "map_keys",
    "map_values",
    "near_keys",
    "parse_json",
    "per_unit",
    "price_source",
    "search",
    "source_record",
    "unused_fields",
    "update_worksheet_text",
]

# ---------------------------------------------------------------------------------------------------------
# What would change


@dataclass(frozen=True)
class FieldChange:
    """One worksheet field of one model: its current value and the price map's (in worksheet units).

    ``field``: a model field (``price_in``, ``context_window``, ...) or ``long_context.<field>``.
    """

    field: str
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
    ``overridden``: price fields where the map differs from a ``price_source: manual`` model's own prices (kept).
    ``unused``: the entry's cost fields the estimate does not read; ``notes``: what else to know about the entry
    (a batch cache price that differs from the batch discount routecalc applies, a second long-context tier).
    """

    model: str
    key: str | None
    status: str
    fields: tuple[FieldChange, ...] = ()
    note: str | None = None
    overridden: tuple[FieldChange, ...] = ()
    unused: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def get(self, name: str) -> FieldChange | None:
        for f in self.fields:
            if f.field == name:
                return f
        return None

    @property
    def from_map(self) -> bool:
        """Whether this model's prices now come from the map (matched, priced, not manual)."""
        return self.status in ("changed", "unchanged") and not self.overridden and self.note != MANUAL


MANUAL = "price_source: manual: its prices are kept"


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
    whose input and output prices are both 0 (free, or a placeholder) is ``unpriced`` and changes nothing. A
    ``price_source: manual`` model keeps its prices; where the map differs they are listed as ``overridden``.
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
        keys = map_keys(entry)
        for fld, new in map_values(entry, k, rate).items():
            old = current_value(spec, fld)
            if fld in PRICE_FIELDS:
                per_1m = new * 1e6 / k
                if not math.isfinite(per_1m) or per_1m > PRICE_MAX_PER_1M:
                    raw = entry[keys[fld]] if fld in keys else new / k / rate
                    absurd.append(
                        f"{printable(key)}.{keys.get(fld, fld)}: {raw:g} per token is {per_1m:,.0f} {ws.currency} "
                        f"per 1M tokens (for {spec.name})"
                    )
                    continue
            if _same(old, new):
                continue
            fields.append(FieldChange(fld, old, new))
        fields.sort(key=lambda f: FIELDS.index(f.field))
        unused, notes = unused_fields(entry)
        if spec.price_source == "manual":
            kept = tuple(f for f in fields if f.field in PRICE_FIELDS or f.field == f"{LONG}.above_tokens")
            applied = tuple(f for f in fields if f not in kept)
            status = "changed" if applied else "unchanged"
            out.append(PriceChange(spec.name, key, status, applied, MANUAL, kept, unused, notes))
            continue
        out.append(
            PriceChange(spec.name, key, "changed" if fields else "unchanged", tuple(fields), None, (), unused, notes)
        )
    if absurd:
        raise PriceSourceError(
            f"implausible prices in the price map (at most {PRICE_MAX_PER_1M:,.0f} per 1M tokens, one currency unit "
            "per token; is --rate right?):\n" + "\n".join(f"  - {a}" for a in absurd)
        )
    return out


def current_value(spec: ModelSpec, fld: str) -> float | int | None:
    """A model's value of a ``FIELDS`` entry (None: not set)."""
    if fld.startswith(LONG + "."):
        return None if spec.long_context is None else getattr(spec.long_context, fld.split(".", 1)[1])
    return getattr(spec, fld)


def warnings(changes: list[PriceChange]) -> list[str]:
    """One sentence per model the map could not price, and per model whose manual prices differ from it."""
    out = [f"{c.model}: {c.note}" for c in changes if c.status in ("missing", "unpriced")]
    for c in changes:
        if c.overridden:
            what = ", ".join(f.field for f in c.overridden)
            out.append(f"{c.model}: price_source: manual — kept its own {what} (the price map differs)")
        out += [f"{c.model}: {n}" for n in c.notes]
    return out


def missing_summary(changes: list[PriceChange], label: str, bundled: bool, option: str = "--from") -> str | None:
    """A prominent sentence when the map lacks some of the worksheet's models (None when it has them all)."""
    missing = [c.model for c in changes if c.status == "missing"]
    if not missing:
        return None
    head = (
        f"{len(missing)} of {len(changes)} models are not in the price map ({label}): {', '.join(missing)}. "
        "Their prices stay as typed in the worksheet, unchecked."
    )
    if bundled:
        return head + (
            " The bundled map is the one pinned with litellm; a newer map may list them: download it "
            f"({MAP_URL}) and pass {option} model_prices_and_context_window.json."
        )
    return head + f" Check their litellm_model names, or use a newer map ({option} FILE)."


def unused_summary(changes: list[PriceChange]) -> str | None:
    """The map's cost fields the estimate does not use, each with the models whose entries have it."""
    by_field: dict[str, list[str]] = {}
    for c in changes:
        if c.note == MANUAL and c.status not in ("changed", "unchanged"):
            continue
        for key in c.unused:
            by_field.setdefault(key, []).append(c.model)
    if not by_field:
        return None
    items = "; ".join(f"{key} ({', '.join(models)})" for key, models in sorted(by_field.items()))
    return (
        "price-map fields the estimate does not use (routecalc bills standard, batch, prompt-cache, reasoning and "
        f"the lowest long-context tier's prices): {items}"
    )


def prices_from_record(source: dict[str, Any], changes: list[PriceChange]) -> dict[str, Any]:
    """``prices_from`` for a worksheet updated from a map: ``source_record`` plus the models it priced."""
    return {**source, "models": [c.model for c in changes if c.from_map]}


def apply_changes(
    ws: Worksheet, changes: list[PriceChange], prices_from: dict[str, Any] | None = None, source: str | None = None
) -> Worksheet:
    """The worksheet with the changed fields replaced (and ``prices_from`` set, when given), validated again as a
    file would be (for ``diff --prices``): a price the map makes invalid is refused before anything is evaluated."""
    by_model = {c.model: c for c in changes if c.status == "changed"}
    doc = ws.as_document()
    for m in doc["models"]:
        c = by_model.get(m["name"])
        for f in c.fields if c else ():
            if f.field.startswith(LONG + "."):
                m[LONG] = {**(m.get(LONG) or {}), f.field.split(".", 1)[1]: f.new}
            else:
                m[f.field] = f.new
    if prices_from is not None:
        doc["prices_from"] = prices_from
    return validate_worksheet(doc, source or f"{ws.name} re-priced")


def reprice(
    ws: Worksheet,
    source: str | Path | None,
    rate: float | None = None,
    today: dt.date | None = None,
    option: str = "--prices",
) -> tuple[Worksheet, list[str], str]:
    """``ws`` with prices from a price map, in memory (for ``diff --prices``): (worksheet, warnings, source label).

    The re-priced worksheet records the map in ``prices_from`` and is validated again like a file would be
    (``model_copy`` checks nothing), so a price the map makes implausible is refused before anything is
    evaluated; new plausibility warnings, unread map fields and missing models are returned as warnings.
    """
    from routecalc.worksheet import worksheet_warnings

    path, label = price_source(source)
    changes = price_updates(ws, load_price_map(path), rate)
    record = prices_from_record(source_record(source, today or dt.date.today()), changes)
    repriced = apply_changes(ws, changes, record, f"{ws.name} re-priced from {label}")
    before = set(worksheet_warnings(ws))
    notes = [n for n in (missing_summary(changes, label, is_bundled(source), option), unused_summary(changes)) if n]
    return repriced, warnings(changes) + notes + [w for w in worksheet_warnings(repriced) if w not in before], label


@dataclass(frozen=True)
class WorksheetUpdate:
    """What ``prices update`` would write: the per-model changes, the edited worksheet text, and ``prices_from``."""

    changes: list[PriceChange]
    text: str
    warnings: list[str]
    prices_from: dict[str, Any] | None = None

    @property
    def n_values(self) -> int:
        return sum(len(c.fields) for c in self.changes)


def plan_update(
    worksheet_path: Path,
    ws: Worksheet,
    price_map: dict[str, dict[str, Any]],
    rate: float | None,
    target: Path | None,
    source: dict[str, Any] | None = None,
) -> WorksheetUpdate:
    """Edit the changed values (and ``prices_from``, from ``source_record``, when given) into the worksheet file's
    text and check the result loads at ``target``.

    The file is read as bytes so its own line endings survive; the result is validated as if it were at
    ``target`` (or in place), so a relative task-table path that would break there is caught before writing.
    """
    from routecalc.worksheet import worksheet_warnings

    text = read_text(worksheet_path)
    changes = price_updates(ws, price_map, rate)
    record = prices_from_record(source, changes) if source is not None else None
    new_text = update_worksheet_text(text, changes, str(worksheet_path), record)
    check = target or worksheet_path
    updated = load_worksheet_text(new_text, str(check), check.parent)
    before = set(worksheet_warnings(ws))
    new_warnings = [w for w in worksheet_warnings(updated) if w not in before]
    return WorksheetUpdate(changes, new_text, warnings(changes) + new_warnings, record)
