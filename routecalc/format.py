"""Number formatting shared by tables, reports and diffs: every number carries its unit."""

from __future__ import annotations

import math

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def money(value: float | None, currency: str, per: str = "") -> str:
    """Money with currency and sensible precision: ``$5,880/mo``, ``$0.00490``, ``CHF 12.50``.

    Amounts of 100 or more are shown whole; smaller amounts with 2 decimals, or 3 significant digits below 1.
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    sym = SYMBOLS.get(currency)
    sign = "-" if value < 0 else ""
    v = abs(value)
    if v >= 100:
        text = f"{v:,.0f}"
    elif v >= 1 or v == 0:
        text = f"{v:,.2f}"
    else:
        text = f"{v:.{max(2, 2 - math.floor(math.log10(v)))}f}"
    amount = f"{sign}{sym}{text}" if sym else f"{sign}{currency} {text}"
    return f"{amount}{per}"


def signed_money(value: float, currency: str, per: str = "") -> str:
    """Money with an explicit sign: ``+$947/mo``, ``-$3,114/mo``."""
    text = money(value, currency, per)
    return text if text.startswith("-") or text == "n/a" else "+" + text


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.9624 -> 96.2%``; small non-zero rates keep significant digits."""
    if value is None or not math.isfinite(value):
        return "n/a"
    v = value * 100
    if v != 0 and abs(v) < 0.001:
        return "<0.001%" if v > 0 else ">-0.001%"
    if v != 0 and abs(v) < 0.1:
        return f"{v:.2g}%"
    return f"{v:.{digits}f}%"


def signed_pct(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}%"


def seconds(value: float | None) -> str:
    """Seconds with precision that suits the size: ``0.45 s``, ``3.2 s``, ``42 s``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value < 10:
        return f"{value:.2f} s"
    if value < 100:
        return f"{value:.1f} s"
    return f"{value:,.0f} s"


def count(value: float) -> str:
    return f"{value:,.0f}"
