"""The machine-readable contract of routecalc's JSON outputs.

Every JSON document a command prints (``--format json``) is stamped by :func:`dumps` with ``schema_version`` and
``output`` (its kind: ``compare``, ``diff``, ...) and is described by a JSON Schema shipped in the package,
``routecalc/schema/output-<kind>.schema.json`` (``routecalc schema --output KIND`` prints it). A consumer checks
``output`` and ``schema_version``; a field is renamed or its meaning changed only with a new ``schema_version``.

Field names carry their units, the same way in every output (and in ``export --target json``):

* money is in the document's ``currency`` (the worksheet's, e.g. ``USD``); a money field names its period:
  ``cost_per_request``, ``monthly_cost``, ``risk_monthly``; prices say their unit in ``price_unit``;
* ``_s`` is seconds (``p95_s``, ``budget_s``); ``_tokens`` is tokens;
* shares, rates, probabilities and quality are fractions in [0, 1]; a field ending in ``_pct`` is a percentage;
* a cost change is new minus old (or policy minus baseline): positive costs more, negative saves.

To add an output: register its kind and version in :data:`OUTPUTS`, its schema in
:mod:`routecalc.contract.schemas`, render with ``dumps(kind, data)``, and add a real output to the schema test
(``tests/test_contract.py``).
"""

from __future__ import annotations

import json
import math
from typing import Any

# output kind -> schema_version of its document (bump when a field is renamed, removed or changes meaning)
OUTPUTS: dict[str, int] = {
    "compare": 1,
    "diff": 1,
    "validate": 1,
    "optimize": 1,
    "replay": 1,
    "prices": 1,
    "explain": 1,
    "examples": 1,
    "sensitivity": 1,
    "simulate": 1,
    "backtest": 1,
}


def jsonable(obj: Any) -> Any:
    """Plain JSON types from dataclass dicts with numpy scalars; NaN/inf become null. (numpy is not imported
    here, so the CLI can read OUTPUTS without it: its scalars are recognised by their conversions.)"""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    kind = type(obj).__module__
    if kind == "numpy":  # numpy scalars: bool_, integer, floating
        if hasattr(obj, "dtype") and obj.dtype.kind == "b":
            return bool(obj)
        if hasattr(obj, "dtype") and obj.dtype.kind in "iu":
            return int(obj)
        if hasattr(obj, "dtype") and obj.dtype.kind == "f":
            v = float(obj)
            return v if math.isfinite(v) else None
    return obj


def stamp(output: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the ``output`` document: ``schema_version`` and ``output`` first, then its fields."""
    if output not in OUTPUTS:
        raise KeyError(f"unregistered JSON output {output!r} (routecalc.contract.OUTPUTS)")
    rest = {k: v for k, v in data.items() if k not in ("schema_version", "output")}
    return {"schema_version": OUTPUTS[output], "output": output, **rest}


def dumps(output: str, data: dict[str, Any]) -> str:
    """The JSON text of a stamped ``output`` document (UTF-8 text kept as is, NaN/inf as null, no trailing
    newline)."""
    return json.dumps(jsonable(stamp(output, data)), indent=2, ensure_ascii=False, allow_nan=False)
