"""A chosen route as worksheet text: ``kind: chain`` steps, a readable label, and a worksheet with the policy added.

The policy is written with the existing ``kind: chain``: each step names its model, ``gate: true`` where the
category's validator checks it, and ``on_reject`` / ``on_failure`` only where they differ from the chain
defaults (the next step; after the last step a reject is delivered and a failure fails). It compiles back to
exactly the arrays that were scored (``optimize`` checks that).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from routecalc.chains import DELIVER, FAIL, HUMAN
from routecalc.errors import InputError
from routecalc.worksheet import parse_yaml, read_text, validate_worksheet

_KEYWORD = {FAIL: "fail", DELIVER: "deliver", HUMAN: "human_review"}
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+/-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def chain_steps(
    model: np.ndarray, gated: np.ndarray, on_reject: np.ndarray, on_failure: np.ndarray, names: tuple[str, ...]
) -> list[str | dict[str, Any]]:
    """One candidate's step arrays ``(S,)`` (``model == -1`` pads) as ``kind: chain`` steps: a bare model name,
    or a mapping with ``gate`` and the targets that differ from the defaults."""
    L = int((model >= 0).sum())
    out: list[str | dict[str, Any]] = []
    for s in range(L):
        step: dict[str, Any] = {"model": names[int(model[s])]}
        nxt = s + 1 if s + 1 < L else None
        if gated[s]:
            step["gate"] = True
            if int(on_reject[s]) != (nxt if nxt is not None else DELIVER):
                step["on_reject"] = _target(int(on_reject[s]))
        if int(on_failure[s]) != (nxt if nxt is not None else FAIL):
            step["on_failure"] = _target(int(on_failure[s]))
        out.append(step["model"] if len(step) == 1 else step)
    return out


def _target(t: int) -> int | str:
    return t if t >= 0 else _KEYWORD[t]


def route_label(model: np.ndarray, gated: np.ndarray, on_reject: np.ndarray, on_failure: np.ndarray, names) -> str:
    """``a → b`` where a reject (or failure) at ``a`` escalates to ``b``; ``a / b`` where only a provider
    failure moves on (a fallback). ``a / a2 → b`` is a cascade step with a same-tier fallback."""
    L = int((model >= 0).sum())
    text = names[int(model[0])]
    for s in range(1, L):
        escalates = bool(gated[s - 1]) and int(on_reject[s - 1]) == s
        text += (" → " if escalates else " / ") + names[int(model[s])]
    return text


def _scalar(value: str) -> str:
    """A YAML scalar: plain when unambiguous, else a JSON (double-quoted) string."""
    if _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    return json.dumps(value, ensure_ascii=False)


def _step_text(step: str | dict[str, Any]) -> str:
    if isinstance(step, str):
        return _scalar(step)
    parts = []
    for k, v in step.items():
        text = "true" if v is True else (str(v) if isinstance(v, int) else _scalar(str(v)))
        parts.append(f"{k}: {text}")
    return "{" + ", ".join(parts) + "}"


def policy_yaml(policy: dict[str, Any], indent: int = 0) -> str:
    """A ``policies:`` list item as YAML text (block style, one step per line), indented by ``indent``."""
    pad = " " * indent
    lines = [f"{pad}- name: {_scalar(policy['name'])}", f"{pad}  kind: {policy['kind']}"]
    if policy.get("description"):
        lines.append(f"{pad}  description: {json.dumps(policy['description'], ensure_ascii=False)}")
    lines.append(f"{pad}  routes:")
    for cat, steps in policy["routes"].items():
        lines.append(f"{pad}    {_scalar(cat)}:")
        lines += [f"{pad}      - {_step_text(s)}" for s in steps]
    return "\n".join(lines) + "\n"


def with_policy(text: str, source: str, policy: dict[str, Any], base_dir: Path | None) -> str:
    """The worksheet ``text`` with ``policy`` appended to its ``policies:`` list (comments and layout kept),
    validated by loading it again. A worksheet without ``policies:`` gets the section at its end."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise InputError(f"{source}: not a worksheet mapping")
    node = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "policies"), None)
    lines = text.splitlines(keepends=True)
    if node is None:
        out = text + ("" if text.endswith("\n") else "\n") + "\npolicies:\n" + policy_yaml(policy, 2)
    elif isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        first = node.value[0].start_mark
        dash = lines[first.line].rfind("-", 0, first.column)
        indent = dash if dash >= 0 else first.column
        end = _end_line(node.value[-1], lines)
        out = "".join(lines[:end]) + policy_yaml(policy, indent) + "".join(lines[end:])
    elif (isinstance(node, yaml.SequenceNode) and not node.value) or (
        isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")
    ):  # "policies: []" or "policies:" with nothing: the value becomes a block list holding ours
        start, stop = node.start_mark.index, node.end_mark.index
        out = text[:start].rstrip(" ") + "\n" + policy_yaml(policy, 2) + text[stop:].lstrip("\n")
    elif isinstance(node, yaml.SequenceNode):
        raise InputError(f"{source}: policies is a flow-style list ([...]); write it as a block list to add a policy")
    else:
        raise InputError(f"{source}: policies is not a list")
    data = parse_yaml(out, source)
    validate_worksheet(data, source, base_dir=base_dir)
    return out


def _end_line(node: yaml.Node, lines: list[str]) -> int:
    """The line after a block node's last content line (trailing blank and comment lines stay after it)."""
    end = node.end_mark.line if node.end_mark.column == 0 else node.end_mark.line + 1
    while end > node.start_mark.line + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return min(end, len(lines))


def worksheet_with_policy(path: Path, policy: dict[str, Any], out: Path) -> str:
    """The text of the worksheet at ``path`` plus ``policy``, to be written to ``out`` (see :func:`with_policy`).

    A task table given as a relative CSV path is read relative to the worksheet, so ``out`` must be in the
    same directory.
    """
    text = read_text(path)
    data = parse_yaml(text, str(path))
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if isinstance(tasks, str) and not Path(tasks).is_absolute() and out.resolve().parent != path.resolve().parent:
        raise InputError(
            f"{path} reads its task table from {tasks} (a relative path): write --out into the same directory "
            f"({path.parent}) so the new worksheet finds it"
        )
    return with_policy(text, str(out), policy, base_dir=out.parent)
