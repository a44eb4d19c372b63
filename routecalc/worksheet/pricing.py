"""Prices that match the invoice: the worksheet fields beyond a model's list input and output prices, and what a
model bills per token once they are applied.

A model may give (per ``price_unit`` tokens, worksheet currency):

* ``price_cache`` (prompt-cache read) and ``price_cache_write`` (prompt-cache write; default ``price_in``: no
  surcharge, as OpenAI bills it); the task's ``cached_share`` / ``cache_write_share`` say which share of its input
  tokens is read from / written to the cache;
* ``price_in_batch`` / ``price_out_batch``: the batch API's prices; the task's ``batch_share`` (or a policy
  step's) says which share of requests goes through it. The batch discount (``price_in_batch / price_in`` and
  ``price_out_batch / price_out``) applies to every input-side (input, cache read, cache write) and output-side
  (output, reasoning) price, long-context tier included;
* ``reasoning_ratio``: hidden reasoning tokens per visible output token (a task may override it per model),
  billed at ``price_reasoning`` (default: the output price);
* ``long_context``: prices for a request whose prompt is longer than ``above_tokens`` — every token of such a
  request is billed at them (as Gemini and Claude bill long-context requests). Cache prices not given there
  scale with the input price (``price_cache x long.price_in / price_in``), the reasoning price with the output
  price;
* the worksheet's ``discounts: {provider: fraction}``: a negotiated discount off every price of that provider's
  models.

``prices_from`` records where the prices come from (``routecalc prices update`` writes it); ``price_source:
manual`` on a model keeps its prices out of ``prices update``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from routecalc.worksheet.base import STRICT, Count, NonNegative
from routecalc.worksheet.names import FreeText, Name


class _Strict(BaseModel):
    model_config = STRICT


Discount = Annotated[float, Field(ge=0.0, lt=1.0)]  # 0.15 = 15 % off
PriceSource = Literal["manual", "map"]


class LongContext(_Strict):
    """Prices of a request whose prompt is longer than ``above_tokens``: all its tokens, input and output."""

    above_tokens: Count
    price_in: NonNegative
    price_out: NonNegative
    price_cache: NonNegative | None = None
    price_cache_write: NonNegative | None = None


class PricesFrom(_Strict):
    """Where the worksheet's prices come from: ``routecalc prices update`` writes it; write it by hand for prices
    typed from a price list or an invoice (``{source: "Anthropic pricing page", date: 2026-11-02}``)."""

    source: FreeText
    version: FreeText | None = None
    date: dt.date | None = None
    models: list[Name] | None = None  # the models whose prices came from it (None: every model)


LONG = "long_context"  # the model field of the long-context tier; its fields are long_context.<field>
# price fields of a model (long_context.<field> for the tier's)
MODEL_PRICE_FIELDS = (
    "price_in",
    "price_out",
    "price_cache",
    "price_cache_write",
    "price_reasoning",
    "price_in_batch",
    "price_out_batch",
)
LONG_PRICE_FIELDS = ("price_in", "price_out", "price_cache", "price_cache_write")


def price_values(model: Any) -> list[tuple[str, float]]:
    """Every price a model sets, as ``(field path, value)``: ``price_in``, ..., ``long_context.price_out``."""
    out = [(f, getattr(model, f)) for f in MODEL_PRICE_FIELDS if getattr(model, f) is not None]
    lc = getattr(model, "long_context", None)
    if lc is not None:
        out += [(f"long_context.{f}", getattr(lc, f)) for f in LONG_PRICE_FIELDS if getattr(lc, f) is not None]
    return out


def batch_checks(model: Any) -> None:
    """A batch price needs a standard price to be a discount of (raises ValueError)."""
    for side in ("in", "out"):
        batch, standard = getattr(model, f"price_{side}_batch"), getattr(model, f"price_{side}")
        if batch is not None and batch > 0 and standard == 0:
            raise ValueError(f"price_{side}_batch is {batch:g} but price_{side} is 0: a batch price is a discount")


@dataclass(frozen=True)
class Rates:
    """What a model bills per ``price_unit`` tokens, the provider's discount applied.

    Standard tier and long-context tier (``long_above``: the prompt length above which the long prices apply;
    ``inf``: no tier); ``batch_in``/``batch_out``: the factor the batch API applies to input-side / output-side
    prices (1: no batch price).
    """

    price_in: float
    price_out: float
    cache_read: float
    cache_write: float
    reasoning: float
    batch_in: float
    batch_out: float
    long_above: float
    long_in: float
    long_out: float
    long_cache_read: float
    long_cache_write: float
    long_reasoning: float


def _ratio(new: float | None, old: float) -> float:
    return new / old if new is not None and old > 0 else 1.0


def rates(model: Any, discount: float = 0.0) -> Rates:
    """A model's billed prices (see module docstring for the defaults). ``discount``: fraction off every price."""
    p_in, p_out = model.price_in, model.price_out
    cache_read = model.price_cache if model.price_cache is not None else p_in
    cache_write = model.price_cache_write if model.price_cache_write is not None else p_in
    reasoning = model.price_reasoning if model.price_reasoning is not None else p_out
    lc = model.long_context
    if lc is None:
        long = (math.inf, p_in, p_out, cache_read, cache_write, reasoning)
    else:
        # a price the tier does not give: the standard one scaled like the tier's input (output) price, or,
        # where the standard tier has none either, the tier's own input (output) price
        s_in, s_out = _ratio(lc.price_in, p_in), _ratio(lc.price_out, p_out)

        def tier(given: float | None, standard: float | None, scale: float, fallback: float) -> float:
            if given is not None:
                return given
            return standard * scale if standard is not None else fallback

        long = (
            float(lc.above_tokens),
            lc.price_in,
            lc.price_out,
            tier(lc.price_cache, model.price_cache, s_in, lc.price_in),
            tier(lc.price_cache_write, model.price_cache_write, s_in, lc.price_in),
            tier(None, model.price_reasoning, s_out, lc.price_out),
        )
    keep = 1.0 - discount
    return Rates(
        price_in=p_in * keep,
        price_out=p_out * keep,
        cache_read=cache_read * keep,
        cache_write=cache_write * keep,
        reasoning=reasoning * keep,
        batch_in=_ratio(model.price_in_batch, p_in),
        batch_out=_ratio(model.price_out_batch, p_out),
        long_above=long[0],
        long_in=long[1] * keep,
        long_out=long[2] * keep,
        long_cache_read=long[3] * keep,
        long_cache_write=long[4] * keep,
        long_reasoning=long[5] * keep,
    )


@dataclass(frozen=True)
class PriceProvenance:
    """Where a worksheet's prices come from, as ``compare``, ``report`` and ``diff`` state it.

    ``source``/``version``/``date``: the worksheet's ``prices_from`` (None: not recorded, the prices are as typed);
    ``from_source``: the models it priced (all but the manual ones when it does not list them); ``typed``: the
    others; ``manual``: models marked ``price_source: manual``; ``discounts``: provider -> fraction off.
    """

    source: str | None
    version: str | None
    date: dt.date | None
    from_source: tuple[str, ...]
    typed: tuple[str, ...]
    manual: tuple[str, ...]
    discounts: dict[str, float]

    @property
    def text(self) -> str:
        """``Prices: `` and the detail."""
        return "Prices: " + self.detail

    @property
    def detail(self) -> str:
        """One sentence, e.g. ``litellm bundled price map (version 1.110.2, applied 2026-11-25) for a, b;
        as typed: c; negotiated discounts: anthropic 15% off.``"""
        if self.source is None:
            parts = ["as typed in the worksheet (no prices_from recorded: `routecalc prices update` records "
                     "the price map it applies)"]  # fmt: skip
        else:
            bits = [f"version {self.version}"] if self.version else []
            bits.append(f"applied {self.date.isoformat()}" if self.date else "no date recorded")
            what = f"{self.source} ({', '.join(bits)})"
            if self.typed or self.manual:
                what += f" for {', '.join(self.from_source) or 'no model'}"
            parts = [what]
            if self.typed:
                parts.append(f"as typed: {', '.join(self.typed)}")
        if self.manual:
            parts.append(f"set by hand (price_source: manual): {', '.join(self.manual)}")
        if self.discounts:
            parts.append(
                "negotiated discounts: "
                + ", ".join(f"{p} {d * 100:.4g}% off" for p, d in sorted(self.discounts.items()))
            )
        return "; ".join(parts) + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "version": self.version,
            "date": self.date.isoformat() if self.date else None,
            "models_from_source": list(self.from_source),
            "models_as_typed": list(self.typed),
            "models_manual": list(self.manual),
            "discounts": dict(sorted(self.discounts.items())),
        }


def price_provenance(ws: Any) -> PriceProvenance:
    """The price provenance of a worksheet (see :class:`PriceProvenance`)."""
    names = [m.name for m in ws.models]
    manual = tuple(m.name for m in ws.models if m.price_source == "manual")
    pf = ws.prices_from
    if pf is None:
        return PriceProvenance(None, None, None, (), tuple(n for n in names if n not in manual), manual, ws.discounts)
    listed = set(pf.models) if pf.models is not None else {n for n in names if n not in manual}
    from_source = tuple(n for n in names if n in listed and n not in manual)
    typed = tuple(n for n in names if n not in listed and n not in manual)
    return PriceProvenance(pf.source, pf.version, pf.date, from_source, typed, manual, dict(ws.discounts))


def price_notes(ws: Any) -> list[str]:
    """The invoice prices a worksheet uses beyond list input/output prices, one sentence per model, category and
    batched step (for the report's assumptions), money in the worksheet currency per ``price_unit`` tokens."""
    from routecalc.format import money, pct

    cur, unit = ws.currency, "1M" if ws.price_unit == "per_1m" else "1K"
    out = []
    for m in ws.models:
        bits = []
        if m.price_in_batch is not None or m.price_out_batch is not None:
            b_in = money(m.price_in_batch if m.price_in_batch is not None else m.price_in, cur)
            b_out = money(m.price_out_batch if m.price_out_batch is not None else m.price_out, cur)
            bits.append(f"batch API {b_in} in / {b_out} out")
        if m.price_cache_write is not None:
            bits.append(f"prompt-cache writes {money(m.price_cache_write, cur)}")
        if m.reasoning_ratio or m.price_reasoning is not None:
            at = money(m.price_reasoning if m.price_reasoning is not None else m.price_out, cur)
            bits.append(f"{m.reasoning_ratio:g} hidden reasoning tokens per output token at {at}")
        if m.long_context is not None:
            r = rates(m)
            bits.append(
                f"prompts above {m.long_context.above_tokens:,} tokens: {money(r.long_in, cur)} in / "
                f"{money(r.long_out, cur)} out, cache read {money(r.long_cache_read, cur)}, all their tokens"
            )
        if bits:
            out.append(f"{m.name} (per {unit} tokens): " + "; ".join(bits) + ".")
    for t in ws.tasks:
        bits = []
        if t.batch_share:
            bits.append(f"{pct(t.batch_share, 0)} of requests through the batch API")
        if t.cache_write_share:
            bits.append(f"{pct(t.cache_write_share, 0)} of input tokens written to the prompt cache")
        if t.reasoning_ratio:
            bits.append("reasoning ratio " + ", ".join(f"{k} {v:g}" for k, v in t.reasoning_ratio.items()))
        if bits:
            out.append(f"{t.name}: " + "; ".join(bits) + ".")
    for p in ws.policies:
        for cat, route in p.routes.items():
            for chain in _leaves(route):
                for s, step in enumerate(chain):
                    if step.batch_share is not None:
                        out.append(
                            f"{p.name}, {cat}, step {s + 1} ({step.label}): {pct(step.batch_share, 0)} of its "
                            "requests through the batch API."
                        )
    return out


def _leaves(route: Any) -> list:
    from routecalc.worksheet.schema import leaves

    return leaves(route)
