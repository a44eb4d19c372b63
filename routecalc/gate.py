"""CI checks on a comparison: the expected winner, that there is a winner, a monthly-cost ceiling.

``compare --expect P --require-winner --max-monthly-cost X`` evaluates these after the comparison is shown; any
failed check makes the command exit 1 (``errors.CheckFailed``), so a pull request that changes a worksheet can be
gated on the decision it implies. Pure: a Comparison in, verdicts out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from routecalc.errors import InputError, PolicyError
from routecalc.format import money
from routecalc.results import Comparison, PolicyResult


@dataclass(frozen=True)
class Checks:
    """What the user asked to check. ``max_monthly_cost`` (worksheet currency per month) applies to ``expect``
    when it is given, else to the winner."""

    expect: str | None = None
    require_winner: bool = False
    max_monthly_cost: float | None = None

    @property
    def asked(self) -> bool:
        return self.expect is not None or self.require_winner or self.max_monthly_cost is not None

    def validate(self, policy_names: list[str]) -> None:
        """Refuse bad options before any estimate runs: an unknown policy, a ceiling that is not a number >= 0."""
        if self.expect is not None and self.expect not in policy_names:
            raise PolicyError(f"--expect: unknown policy {self.expect!r} (policies: {', '.join(policy_names)})")
        if self.max_monthly_cost is not None and not (
            math.isfinite(self.max_monthly_cost) and self.max_monthly_cost >= 0
        ):
            raise InputError(f"--max-monthly-cost: must be a number >= 0 (got {self.max_monthly_cost!r})")


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: ``check`` is ``expect``, ``require_winner`` or ``max_monthly_cost``."""

    check: str
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _expect(c: Comparison, name: str) -> CheckResult:
    if c.winner == name:
        return CheckResult("expect", True, f"the winner is {name}, as expected")
    p = c.policy(name)
    if c.winner is None:
        why = f"no policy meets every target ({name}: nearest miss {p.nearest_miss})"
        return CheckResult("expect", False, f"expected winner {name}, but there is none: {why}")
    w = c.policy(c.winner)
    if not p.meets_targets:
        why = f"{name} misses a target: {p.nearest_miss}"
    else:
        why = f"both meet every target; the winner is the {c.winner_rule} ({_cost(c, w)} vs {_cost(c, p)})"
    return CheckResult("expect", False, f"expected winner {name}, got {c.winner}: {why}")


def _cost(c: Comparison, p: PolicyResult) -> str:
    return f"{p.name} {money(p.monthly_cost, c.currency, '/month')}"


def _require_winner(c: Comparison) -> CheckResult:
    if c.winner is not None:
        return CheckResult("require_winner", True, f"{c.winner} meets every target")
    misses = "; ".join(f"{p.name}: {p.nearest_miss}" for p in c.policies)
    return CheckResult("require_winner", False, f"no policy meets every target (nearest misses: {misses})")


def _max_cost(c: Comparison, limit: float, name: str | None) -> CheckResult:
    subject = name if name is not None else c.winner
    cap = money(limit, c.currency, "/month")
    if subject is None:
        return CheckResult("max_monthly_cost", False, f"no winner, so nothing to hold to {cap}")
    p = c.policy(subject)
    role = "" if name is not None else " (the winner)"
    if p.monthly_cost <= limit:
        return CheckResult(
            "max_monthly_cost", True, f"{subject}{role} costs {money(p.monthly_cost, c.currency, '/month')} <= {cap}"
        )
    over = money(p.monthly_cost - limit, c.currency, "/month")
    return CheckResult(
        "max_monthly_cost",
        False,
        f"{subject}{role} costs {money(p.monthly_cost, c.currency, '/month')}, more than {cap} (by {over})",
    )


def run_checks(c: Comparison, checks: Checks) -> list[CheckResult]:
    """The verdict of every check asked for, in a fixed order (expect, require_winner, max_monthly_cost)."""
    out = []
    if checks.expect is not None:
        out.append(_expect(c, checks.expect))
    if checks.require_winner:
        out.append(_require_winner(c))
    if checks.max_monthly_cost is not None:
        out.append(_max_cost(c, checks.max_monthly_cost, checks.expect))
    return out
