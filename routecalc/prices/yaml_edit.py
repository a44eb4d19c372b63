"""Writing price changes into the user's own worksheet YAML: targeted text edits, every other byte kept.

Values are replaced where they stand (the YAML parser's positions of each value); a field the model does not
have yet is added under its siblings (block style) or inside its ``{...}`` (flow style); a ``long_context``
field goes into the model's ``long_context`` mapping, which is added as one flow mapping when the model has
none. ``prices_from`` (where the prices came from) is replaced, or added above ``models:``. The result is
parsed again and must equal the old data with exactly these changes, or nothing is written.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import yaml

from routecalc.errors import InputError
from routecalc.worksheet import parse_yaml
from routecalc.worksheet.pricing import LONG, LONG_PRICE_FIELDS, MODEL_PRICE_FIELDS

if TYPE_CHECKING:
    from routecalc.prices import FieldChange, PriceChange

# a model's fields in the order a new one is placed after its nearest preceding sibling
MODEL_ORDER = (*MODEL_PRICE_FIELDS, LONG, "context_window")
LONG_ORDER = ("above_tokens", *LONG_PRICE_FIELDS)


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


def flow_value(value: Any) -> str:
    """A value as YAML flow text: numbers as ``format_number``, dates bare, strings JSON-quoted (a JSON string is
    a YAML double-quoted scalar), lists and mappings in ``[...]`` / ``{...}``."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(flow_value(v) for v in value) + "]"


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


def _compose(text: str, source: str) -> yaml.MappingNode:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(root, yaml.MappingNode):
        raise InputError(f"{source}: a worksheet is a YAML mapping")
    return root


def update_worksheet_text(
    yaml_text: str,
    changes: Sequence[PriceChange],
    source: str = "worksheet",
    prices_from: dict[str, Any] | None = None,
) -> str:
    """Rewrite the changed fields (and ``prices_from``, when given) in the worksheet's own text."""
    changed = {c.model: c for c in changes if c.status == "changed"}
    if not changed and prices_from is None:
        return yaml_text
    root = _compose(yaml_text, source)
    models = _mapping_get(root, "models")
    if models is None or not isinstance(models[1], yaml.SequenceNode):
        raise InputError(f"{source}: no models: list to update")
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), character offsets
    for item in models[1].value:
        if not isinstance(item, yaml.MappingNode):
            continue
        name = _mapping_get(item, "name")
        if name is None or not isinstance(name[1], yaml.ScalarNode) or name[1].value not in changed:
            continue
        fields = changed[name[1].value].fields
        long = [f for f in fields if f.field.startswith(LONG + ".")]
        for fc in fields:
            if not fc.field.startswith(LONG + "."):
                edits.append(_set(yaml_text, item, fc.field, fc.new, MODEL_ORDER))
            elif fc is long[0]:  # the tier's fields, where the first of them stands in the model's order
                edits += _long_edits(yaml_text, item, long)
    if prices_from is not None:
        edits.append(_prices_from_edit(yaml_text, root, prices_from))
    new_text = yaml_text
    # from the end back; insertions at one place in reverse, so they read in the order they were planned
    for _, (start, end, repl) in sorted(enumerate(edits), key=lambda e: (e[1][0], e[1][1], e[0]), reverse=True):
        new_text = new_text[:start] + repl + new_text[end:]
    _check_edit(yaml_text, new_text, changed, prices_from, source)
    return new_text


def _long_edits(text: str, item: yaml.MappingNode, long: list[FieldChange]) -> list[tuple[int, int, str]]:
    """Edits of a model's ``long_context`` fields: into its mapping, or the whole mapping as one new entry."""
    found = _mapping_get(item, LONG)
    if found is None or not isinstance(found[1], yaml.MappingNode):
        value = {f.field.split(".", 1)[1]: f.new for f in sorted(long, key=lambda f: _long_rank(f.field))}
        return [_set(text, item, LONG, value, MODEL_ORDER)]
    return [_set(text, found[1], f.field.split(".", 1)[1], f.new, LONG_ORDER) for f in long]


def _long_rank(field: str) -> int:
    return LONG_ORDER.index(field.split(".", 1)[1])


def _set(text: str, mapping: yaml.MappingNode, key: str, value: Any, order: tuple[str, ...]) -> tuple[int, int, str]:
    """Replace ``key``'s value in ``mapping`` where it stands, or insert ``key: value`` into it."""
    found = _mapping_get(mapping, key)
    if found is not None:
        node = found[1]
        old = text[node.start_mark.index : node.end_mark.index]
        new = format_number(value, old) if isinstance(value, int | float) else flow_value(value)
        return node.start_mark.index, node.end_mark.index, new
    return _insertion(text, mapping, key, value, order)


def _insertion(text: str, item: yaml.MappingNode, key: str, value: Any, order: tuple[str, ...]) -> tuple[int, int, str]:
    """Where and what to insert for a field the mapping does not have yet: after its nearest preceding sibling
    in ``order`` (else after the last entry), in the mapping's own style."""
    anchor = None
    for fld in reversed(order[: order.index(key)]) if key in order else ():
        anchor = _mapping_get(item, fld)
        if anchor is not None:
            break
    if anchor is None:
        anchor = item.value[-1]
    key_node, value_node = anchor
    sibling = text[value_node.start_mark.index : value_node.end_mark.index]
    if isinstance(value, int | float) and not isinstance(value, bool):
        shown = format_number(value, sibling if isinstance(value_node, yaml.ScalarNode) else None)
    else:
        shown = flow_value(value)
    if item.flow_style:
        pos = value_node.end_mark.index
        return pos, pos, f", {key}: {shown}"
    if value_node.end_mark.line != key_node.start_mark.line:  # a nested block: go after all of it
        pos = value_node.end_mark.index
        while pos > 0 and text[pos - 1] in " \n":
            pos -= 1
    else:
        pos = value_node.end_mark.index
    pos = _line_end(text, pos)
    newline = "\r\n" if text.startswith("\r\n", pos) else "\n"
    indent = " " * key_node.start_mark.column
    return pos, pos, f"{newline}{indent}{key}: {shown}"


def _prices_from_edit(text: str, root: yaml.MappingNode, value: dict[str, Any]) -> tuple[int, int, str]:
    """Replace the top-level ``prices_from`` value, or add it as one line above ``models:``."""
    found = _mapping_get(root, "prices_from")
    if found is not None:
        key, node = found
        return key.end_mark.index, _content_end(node), f": {flow_value(value)}"
    models_key = _mapping_get(root, "models")
    assert models_key is not None
    pos = models_key[0].start_mark.index
    newline = "\r\n" if "\r\n" in text else "\n"
    return pos, pos, f"prices_from: {flow_value(value)}{newline}"


def _content_end(node: yaml.Node) -> int:
    """Where a value's own text ends: a block collection's end mark lies at the next token (after any comments
    and blank lines), so descend to its last entry."""
    while isinstance(node, yaml.CollectionNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    return node.end_mark.index


def _check_edit(
    old_text: str,
    new_text: str,
    changed: dict[str, PriceChange],
    prices_from: dict[str, Any] | None,
    source: str,
) -> None:
    """The edited text must parse to the old data with exactly the intended fields changed."""
    expected = copy.deepcopy(parse_yaml(old_text, source))
    for m in expected.get("models", []):
        if isinstance(m, dict) and m.get("name") in changed:
            for fc in changed[m["name"]].fields:
                _put(m, fc)
    if prices_from is not None:
        expected["prices_from"] = prices_from
    try:
        actual = parse_yaml(new_text, source)
    except InputError:
        actual = None
    if actual != expected:
        raise InputError(
            f"{source}: cannot update the prices in place without changing something else (YAML anchors, "
            "aliases or merge keys in models:?). Edit the values shown above by hand."
        )


def _put(model: dict, fc: FieldChange) -> None:
    if fc.field.startswith(LONG + "."):
        long = model.get(LONG)
        if not isinstance(long, dict):
            long = model[LONG] = {}
        long[fc.field.split(".", 1)[1]] = fc.new
    else:
        model[fc.field] = fc.new
