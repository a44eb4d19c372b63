"""Shared fixtures: the shipped worksheets and one cached comparison (session-scoped: engines are pure)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import routecalc

ROOT = Path(__file__).resolve().parent.parent
WORKSHEETS = ROOT / "worksheets"
TODAY = dt.date(2026, 11, 25)  # fixed, so review-age warnings do not change with the calendar


def shipped_worksheets() -> list[Path]:
    return sorted(WORKSHEETS.glob("*.yaml"))


@pytest.fixture(scope="session")
def support_path() -> Path:
    return WORKSHEETS / "support-triage.yaml"


@pytest.fixture(scope="session")
def support_ws(support_path: Path) -> routecalc.Worksheet:
    return routecalc.load_worksheet(support_path)


@pytest.fixture(scope="session")
def support_cmp(support_ws: routecalc.Worksheet) -> routecalc.Comparison:
    return routecalc.compare(support_ws, samples=100_000, seed=7, today=TODAY)
