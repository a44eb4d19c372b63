"""Number formatting shared by tables, reports and diffs: every number carries its unit."""

from __future__ import annotations

import math
import re

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


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u2028``), so text routecalc did not
    validate (price-map keys, file paths, parts of an error message) cannot drive a terminal or fake a line."""
    pattern = _CONTROL if keep_newlines else _CONTROL_OR_NEWLINE
    return pattern.sub(lambda m: repr(m.group())[1:-1], text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A text cell for a CSV file: one starting with ``= + - @``, tab or CR gets a leading ``'`` so a spreadsheet
    shows it as text instead of running it as a formula (OWASP's advice against CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text
