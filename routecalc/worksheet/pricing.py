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
