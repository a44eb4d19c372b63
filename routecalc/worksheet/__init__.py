"""The worksheet: the user's description of traffic, models and candidate policies.

Loading is strict (``yaml.safe_load`` with duplicate keys refused, pydantic v2 in strict mode, unknown keys
refused) and reports *every* problem at once with a field path such as ``tasks[3].traffic_share``. The result
is a tree of frozen pydantic models; nothing downstream mutates it.

``schema`` holds the models, ``load`` reads files and validates, ``checks`` relates sections, ``tasks_csv``
reads a task table, ``overlay`` merges what-if scenarios.
"""

from routecalc.worksheet.checks import worksheet_warnings
from routecalc.worksheet.load import (
    field_path,
    file_sha256,
    load_worksheet,
    load_worksheet_text,
    parse_yaml,
    read_text,
    read_yaml,
    validate_worksheet,
)
from routecalc.worksheet.overlay import apply_overlay
from routecalc.worksheet.schema import (
    DAYS_PER_MONTH,
    DEFAULT_STATUS_CODES,
    ERROR_TYPES,
    MAX_CHAIN,
    MAX_SPREAD,
    SCHEMA_VERSION,
    Z95,
    Band,
    ClassifierSpec,
    Condition,
    Constraints,
    Defaults,
    HumanReview,
    Latency,
    ModelSpec,
    PolicySpec,
    Router,
    Rule,
    SplitArm,
    StepSpec,
    TaskSpec,
    Tier,
    ToolHit,
    ToolSpec,
    Validator,
    Volume,
    Worksheet,
    json_schema,
    leaves,
    step_gated,
)
from routecalc.worksheet.tasks_csv import tasks_from_csv

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_STATUS_CODES",
    "ERROR_TYPES",
    "MAX_CHAIN",
    "MAX_SPREAD",
    "SCHEMA_VERSION",
    "Z95",
    "Band",
    "ClassifierSpec",
    "Condition",
    "Constraints",
    "Defaults",
    "HumanReview",
    "Latency",
    "ModelSpec",
    "PolicySpec",
    "Router",
    "Rule",
    "SplitArm",
    "StepSpec",
    "TaskSpec",
    "Tier",
    "ToolHit",
    "ToolSpec",
    "Validator",
    "Volume",
    "Worksheet",
    "apply_overlay",
    "field_path",
    "file_sha256",
    "json_schema",
    "leaves",
    "load_worksheet",
    "load_worksheet_text",
    "parse_yaml",
    "read_text",
    "read_yaml",
    "step_gated",
    "tasks_from_csv",
    "validate_worksheet",
    "worksheet_warnings",
]
