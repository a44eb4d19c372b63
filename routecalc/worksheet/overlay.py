"""What-if overlays: deep-merge a scenario onto worksheet data before validation."""

from __future__ import annotations

from typing import Any

from routecalc.errors import InputError

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
