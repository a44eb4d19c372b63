"""What-if overlays: deep-merge a scenario onto worksheet data before validation."""

from __future__ import annotations

import math
import types
from typing import Annotated, Any, Union, get_args, get_origin

from routecalc.errors import Problem, WorksheetError, field_path
from routecalc.limits import short_repr
from routecalc.worksheet.schema import Band, ModelSpec, PolicySpec, TaskSpec

_NAMED_LISTS = ("models", "tasks", "policies")
_SPECS = {"models": ModelSpec, "tasks": TaskSpec, "policies": PolicySpec}
_ITEM = {"models": "model", "tasks": "category", "policies": "policy"}


def apply_overlay(base: Any, overlay: Any, source: str = "scenario") -> Any:
    """Deep-merge a what-if overlay onto worksheet data.

    Mappings merge key by key; the lists ``models``/``tasks``/``policies`` merge item by ``name`` (a new name
    is appended); a ``scale:`` block multiplies numbers: ``scale: {models: {price_in: 1.2}}`` for every model,
    ``scale: {models: {gpt-4o: {price_out: 0.5}}}`` for one (both given: they multiply). A token band scales
    all its numbers. An unknown section, field or name, a field that is not a number, or a factor that is not a
    non-negative number is a WorksheetError naming ``source`` (never a silent no-op).
    """
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        raise WorksheetError(source, [Problem("", "a scenario overlay and its worksheet must both be YAML mappings")])
    overlay = dict(overlay)
    repeated = _repeated_names(overlay)
    if repeated:
        raise WorksheetError(source, repeated)
    scale = overlay.pop("scale", None)
    out = _merge(base, overlay)
    if scale is not None:
        out = _scale(out, scale, source)
    return out


def _repeated_names(overlay: dict) -> list[Problem]:
    """A name given twice in one of the overlay's lists: which entry would win is a guess, so it is an error."""
    problems = []
    for key in _NAMED_LISTS:
        items = overlay.get(key)
        if not isinstance(items, list):
            continue
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            if isinstance(item, dict) and _named(item):
                name = item["name"]
                if name in first:
                    problems.append(
                        Problem(
                            f"{key}[{i}].name",
                            f"{_ITEM[key]} {short_repr(name)} appears twice in this scenario (also {key}[{first[name]}]); "
                            "give each name once",
                        )
                    )
                else:
                    first[name] = i
    return problems


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


def _kind(annotation: Any) -> str | None:
    """``"number"``, ``"int"`` or ``"band"`` for a field a scale factor can multiply, else None."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kind(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kinds = {_kind(a) for a in get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if annotation is float:
        return "number"
    if annotation is int:
        return "int"
    if annotation is Band:
        return "band"
    return None


def scalable_fields(section: str) -> dict[str, str]:
    """Field -> kind for the fields of a section that ``scale:`` can multiply."""
    spec = _SPECS[section]
    return {name: k for name, f in spec.model_fields.items() if (k := _kind(f.annotation)) is not None}


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_factors(section: str, factors: dict, where: tuple, problems: list[Problem]) -> dict[str, float]:
    fields = scalable_fields(section)
    good: dict[str, float] = {}
    for fld, factor in factors.items():
        path = field_path((*where, fld))
        if fld not in fields:
            if fld in _SPECS[section].model_fields:
                problems.append(Problem(path, f"{_ITEM[section]} field {fld!r} is not a number and cannot be scaled"))
            else:
                problems.append(
                    Problem(path, f"unknown {_ITEM[section]} field {short_repr(fld)} (scalable: {', '.join(fields)})")
                )
        elif not _number(factor) or not math.isfinite(factor) or factor < 0:
            problems.append(Problem(path, f"a scale factor is a non-negative number (got {short_repr(factor)})"))
        else:
            good[fld] = float(factor)
    return good


def _scaled(value: Any, kind: str, factor: float) -> Any:
    if kind == "band" and isinstance(value, dict):
        return {k: v * factor if _number(v) else v for k, v in value.items()}
    if not _number(value):
        return value  # the wrong type: validation reports it
    return round(value * factor) if kind == "int" and isinstance(value, int) else value * factor


def _scale(data: dict, scale: Any, source: str) -> dict:
    if not isinstance(scale, dict):
        raise WorksheetError(source, [Problem("scale", "must be a mapping such as {models: {price_in: 1.2}}")])
    problems: list[Problem] = []
    out = dict(data)
    for section, factors in scale.items():
        where = ("scale", section)
        if section not in _NAMED_LISTS:
            problems.append(
                Problem(field_path(where), f"unknown section {short_repr(section)}: scale models, tasks or policies")
            )
            continue
        if not isinstance(factors, dict):
            problems.append(Problem(field_path(where), "must map fields (or names) to factors, e.g. {price_in: 1.2}"))
            continue
        items = out.get(section) if isinstance(out.get(section), list) else []
        names = [i["name"] for i in items if isinstance(i, dict) and _named(i)]
        common = _check_factors(section, {k: v for k, v in factors.items() if not isinstance(v, dict)}, where, problems)
        per_name: dict[str, dict[str, float]] = {}
        for name, sub in factors.items():
            if not isinstance(sub, dict):
                continue
            if name not in names:
                path = field_path((*where, name))
                if name in scalable_fields(section):
                    problems.append(Problem(path, f"a scale factor is a non-negative number (got {short_repr(sub)})"))
                    continue
                known = ", ".join(short_repr(n, 40) for n in names[:10]) + (", ..." if len(names) > 10 else "")
                problems.append(
                    Problem(path, f"unknown {_ITEM[section]} {short_repr(name)} (worksheet has: {known or 'none'})")
                )
                continue
            per_name[name] = _check_factors(section, sub, (*where, name), problems)
        kinds = scalable_fields(section)
        scaled = []
        for item in items:
            if isinstance(item, dict):
                own = per_name.get(item["name"], {}) if _named(item) else {}
                factor = {f: common.get(f, 1.0) * own.get(f, 1.0) for f in common.keys() | own.keys()}
                item = {f: _scaled(v, kinds[f], factor[f]) if f in factor else v for f, v in item.items()}
            scaled.append(item)
        if isinstance(out.get(section), list):
            out[section] = scaled
    if problems:
        raise WorksheetError(source, problems)
    return out
