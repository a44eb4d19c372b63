"""Strict, bounded YAML: ``yaml.safe_load`` semantics for a worksheet or overlay, minus its ways to hang or crash.

On top of PyYAML's safe loader:

- duplicate mapping keys are an error (the safe loader silently keeps the last);
- mapping keys must be scalars (a ``? [a, b]`` key is refused with its field path);
- nesting deeper than ``MAX_DEPTH`` is refused while parsing (PyYAML's composer recurses per level);
- aliases may not make the document larger than it is by more than ``MAX_ALIAS_NODES`` nodes, counted on the
  composed node graph before anything is built (a "billion laughs" of nested aliases is refused in
  milliseconds instead of hanging whatever walks the result), and an alias may not contain itself;
- integer literals longer than ``MAX_INT_DIGITS`` characters are refused (Python refuses to convert more than
  4,300 digits, with a traceback); a scalar its tag cannot read (``!!int abc``, a date ``2026-13-45``) is a
  located error, never a ``ValueError``.

Every problem is a :class:`WorksheetError` with a line number or a field path, never a traceback.

A plain document (no anchors, aliases or tags, nothing to refuse) is built straight from libyaml's events
(``_fast_load``, about 6x faster than composing nodes and constructing them in Python); anything else is read
the full way (``_full_load``), so every check and every message is the full reader's.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from routecalc.errors import Problem, WorksheetError, field_path
from routecalc.gcpause import gc_paused
from routecalc.limits import MAX_ALIAS_NODES, MAX_DEPTH, MAX_INT_DIGITS, short_repr

_READ_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError, RecursionError)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with a nesting limit, refusing duplicate keys and unreadable scalars with their position."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except _READ_ERRORS as exc:
            what = node.tag.rsplit(":", 1)[-1]
            raise ConstructorError(
                None, None, f"cannot read {short_repr(getattr(node, 'value', ''))} as {what} ({exc})", node.start_mark
            ) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if isinstance(node.value, str) and len(node.value) > MAX_INT_DIGITS:
            raise ConstructorError(
                None, None, f"an integer of {len(node.value):,} characters (at most {MAX_INT_DIGITS})", node.start_mark
            )
        return super().construct_yaml_int(node)


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable: only a non-scalar key can be, and those are refused before construction
            raise ConstructorError(None, None, "a mapping key must be a scalar", key_node.start_mark) from None
        if first is not None:
            raise ConstructorError(
                None, None, f"duplicate key {short_repr(key)} (first on line {first + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)


def _key_text(node: yaml.Node) -> str:
    text = node.value if isinstance(node, yaml.ScalarNode) else "?"
    return text if len(text) <= 40 else text[:37] + "..."


def check_graph(root: yaml.Node | None) -> list[Problem]:
    """Non-scalar keys (with their field paths), aliases that contain themselves, and alias expansion.

    Walks each distinct node once (aliases share nodes), computing how many nodes the document has once every
    alias is expanded; refuses more than ``MAX_ALIAS_NODES`` beyond the distinct nodes written in the file.
    """
    if root is None:
        return []
    problems: list[Problem] = []
    size: dict[int, int] = {}  # id(node) -> expanded size, capped
    on_stack: set[int] = set()
    cap = 10 * MAX_ALIAS_NODES + 1  # sizes saturate here: no exponentially large integers

    def walk(node: yaml.Node, path: tuple) -> int:
        key = id(node)
        if key in size:
            return size[key]
        if key in on_stack:
            problems.append(Problem(field_path(path), "a YAML alias refers to a node that contains it (recursive)"))
            return 1
        on_stack.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                total += walk(child, (*path, i))
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode):
                    problems.append(
                        Problem(
                            field_path(path) or "(top)",
                            f"line {k.start_mark.line + 1}: a mapping key must be a scalar (a name or a number), "
                            f"not a {'list' if isinstance(k, yaml.SequenceNode) else 'mapping'}",
                        )
                    )
                    continue
                total += 1 + walk(v, (*path, _key_text(k)))
        on_stack.discard(key)
        size[key] = min(total, cap)
        return size[key]

    expanded = walk(root, ())
    added = expanded - len(size)
    if added > MAX_ALIAS_NODES:
        shown = f"{added:,}" if expanded < cap else f"more than {cap - 1:,}"
        problems.append(
            Problem(
                "",
                f"YAML aliases expand the document by {shown} nodes; at most {MAX_ALIAS_NODES:,} "
                "(an alias counts as a copy of what it names)",
            )
        )
    return problems


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` from libyaml's event stream (iterative: nothing recurses), so the
    C composer, which recurses per level, only ever sees documents it can build."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.CollectionStartEvent | yaml.ScalarEvent | yaml.AliasEvent):
            if depth + 1 > MAX_DEPTH:
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _compose(text: str) -> tuple[yaml.Node | None, StrictLoader]:
    """The document's node graph and a loader to construct it with: libyaml's parser and composer when PyYAML
    has them (about 5x faster on big worksheets), after an iterative depth check; else the pure-Python ones."""
    if getattr(yaml, "__with_libyaml__", False):
        _check_depth(text)
        c = yaml.CSafeLoader(text)
        try:
            node = c.get_single_node()
        finally:
            c.dispose()
        return node, StrictLoader("")
    loader = StrictLoader(text)
    return loader.get_single_node(), loader


_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")
)  # what an untagged scalar may resolve to on the fast path (not merge ``<<`` or value ``=``)
_UNREAD = object()  # the fast path declined: read the document the full way


class _Declined(Exception):
    """Something only the full reader handles (anchors, aliases, tags, a problem to report)."""


def _fast_load(text: str) -> Any:
    """The document built straight from libyaml's event stream, or ``_UNREAD``.

    The common worksheet (plain mappings, lists and untagged scalars) needs no node graph: this builds it in one
    iterative pass, resolving and constructing each distinct scalar once with the same resolver and constructors
    as the full reader. It declines (returns ``_UNREAD``) at anything else -- an anchor, an alias, an explicit
    tag, a merge key, a non-scalar or duplicate key, nesting past ``MAX_DEPTH``, a scalar its tag cannot read,
    a second document, bad YAML -- so the full reader then reads it with every strict check and its exact error.
    """
    loader = StrictLoader("")
    try:
        return _build(yaml.parse(text, Loader=yaml.CSafeLoader), loader)
    except (_Declined, yaml.YAMLError, *_READ_ERRORS):
        return _UNREAD
    finally:
        loader.dispose()


def _build(events: Any, loader: StrictLoader) -> Any:
    resolve, constructors = loader.resolve, loader.yaml_constructors
    scalars: dict[tuple[str, tuple[bool, bool]], Any] = {}  # (text, implicit) -> value; all immutable
    stack: list[Any] = []  # containers being built, innermost last
    keys: list[Any] = []  # per container: the mapping key awaiting its value (_UNREAD: none; lists: unused)
    root: Any = None
    documents = 0
    for event in events:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if event.anchor is not None or event.tag not in (None, "!") or len(stack) + 1 > MAX_DEPTH:
                raise _Declined
            cache_key = (event.value, event.implicit)
            value = scalars.get(cache_key, _UNREAD)
            if value is _UNREAD:
                tag = resolve(yaml.ScalarNode, event.value, event.implicit)
                if tag not in _PLAIN_TAGS:
                    raise _Declined
                node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
                value = scalars[cache_key] = constructors[tag](loader, node)
            is_scalar = True
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if event.anchor is not None or event.tag not in (None, "!") or len(stack) + 1 > MAX_DEPTH:
                raise _Declined
            stack.append({} if kind is yaml.MappingStartEvent else [])
            keys.append(_UNREAD)
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            value = stack.pop()
            keys.pop()
            is_scalar = False
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Declined
            continue
        elif kind is yaml.AliasEvent:
            raise _Declined
        else:  # stream start/end, document end
            continue
        if not stack:
            root = value
            continue
        top = stack[-1]
        if type(top) is list:
            top.append(value)
        elif keys[-1] is _UNREAD:
            if not is_scalar or value in top:  # a non-scalar or duplicate key: the full reader says where
                raise _Declined
            keys[-1] = value
        else:
            top[keys[-1]] = value
            keys[-1] = _UNREAD
    return root


@gc_paused()
def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` semantics, bounded and strict (see the module docstring); raises WorksheetError."""
    if getattr(yaml, "__with_libyaml__", False):
        data = _fast_load(text)
        if data is not _UNREAD:
            return data
    return _full_load(text, source)


def _full_load(text: str, source: str) -> Any:
    """The node graph composed and checked (``check_graph``), then constructed: every strict check, every error."""
    loader: StrictLoader | None = None
    try:
        node, loader = _compose(text)
        problems = check_graph(node)
        if problems:
            raise WorksheetError(source, problems)
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if len(problem) > 300:
            problem = problem[:297] + "..."
        raise WorksheetError(source, [Problem(where, f"not valid YAML: {problem}")]) from None
    except _READ_ERRORS as exc:  # a safety net: PyYAML raising something other than YAMLError
        raise WorksheetError(source, [Problem("", f"not valid YAML: {type(exc).__name__}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
