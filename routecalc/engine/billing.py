"""What a try bills per token, shared by both engines (:mod:`routecalc.worksheet.pricing` for the fields).

For catalog entry ``m`` in category ``c``, a request whose prompt is longer than the model's long-context
threshold or not (``long``: the tier's prices ``p_*``), and the share of it sent through the batch API (``batch``:
0 or 1 per request in Monte Carlo; a share in the expected-value engine, where the bill is linear in it):

* per input token of an answer: ``(p_in + h (p_read - p_in) + w (p_write - p_in)) B_in``,
* per token of the category's output band: ``ratio (p_out + rr p_reasoning) B_out``,
* per input token of a failed try (when failed tries bill their input): ``p_in B_in``,

where ``h``/``w`` are the category's prompt-cache read/write shares of input tokens, ``ratio`` the model's
``output_ratio`` (visible output tokens per band token), ``rr`` its reasoning ratio in the category (hidden
reasoning tokens per visible output token), and ``B = 1 + batch (factor - 1)`` with the model's batch factors.
Prices already carry the provider's negotiated discount. Without cache writes, reasoning, a tier or batch
traffic these are, bit for bit, ``p_in + h (p_cache - p_in)`` and ``ratio p_out``.

The expected-value engine multiplies out the same bill term by term (:func:`answer_costs`), in the order that
keeps its numbers bit for bit those of routecalc 0.1 when none of these prices is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.chains import ModelTable, TaskTable


@dataclass(frozen=True, eq=False)
class TokenPrices:
    """Per-token prices of a try, broadcast over the shapes of ``m``, ``c``, ``long`` and ``batch``."""

    fail_in: np.ndarray  # per input token of a failed try
    answer_in: np.ndarray  # per input token of an answer
    answer_out: np.ndarray  # per token of the category's output band


def token_prices(
    mt: ModelTable,
    tt: TaskTable,
    m: np.ndarray,
    c: np.ndarray,
    long: np.ndarray | bool = False,
    batch: np.ndarray | float = 0.0,
) -> TokenPrices:
    """Prices of catalog entries ``m`` in categories ``c`` (integer arrays that broadcast together)."""
    p_in, p_read, p_write, p_out, p_reason, b_in, b_out = _prices(mt, m, long, batch)
    cache = p_in + tt.cached_share[..., c] * (p_read - p_in) + tt.cache_write_share[..., c] * (p_write - p_in)
    return TokenPrices(
        fail_in=p_in * b_in,
        answer_in=cache * b_in,
        answer_out=mt.output_ratio[..., m] * (p_out + tt.reasoning_ratio[..., c, m] * p_reason) * b_out,
    )


def _prices(mt: ModelTable, m: np.ndarray, long: np.ndarray | bool, batch: np.ndarray | float) -> tuple:
    """The tier's input, cache read, cache write, output and reasoning prices, and the batch factors."""

    def tier(standard: np.ndarray, long_price: np.ndarray) -> np.ndarray:
        return np.where(long, long_price[..., m], standard[..., m]) if np.any(long) else standard[..., m]

    return (
        tier(mt.price_in, mt.long_in),
        tier(mt.price_cache, mt.long_cache),
        tier(mt.price_cache_write, mt.long_cache_write),
        tier(mt.price_out, mt.long_out),
        tier(mt.price_reasoning, mt.long_reasoning),
        1 + batch * (mt.batch_in[..., m] - 1),
        1 + batch * (mt.batch_out[..., m] - 1),
    )


def answer_costs(
    mt: ModelTable,
    tt: TaskTable,
    m: np.ndarray,
    c: np.ndarray,
    ex: np.ndarray,
    ey: np.ndarray,
    long: np.ndarray | bool = False,
    batch: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The bill of an answer with ``ex`` input and ``ey`` visible output tokens (band tokens x output ratio),
    and the part of it its input tokens make (what a cancelled or abandoned answer bills)::

        ex p_in B_in + ey p_out B_out + h ex (p_read - p_in) B_in + w ex (p_write - p_in) B_in + ey rr p_reason B_out
    """
    p_in, p_read, p_write, p_out, p_reason, b_in, b_out = _prices(mt, m, long, batch)
    cache = tt.cached_share[..., c] * ex * (p_read - p_in) * b_in
    write = tt.cache_write_share[..., c] * ex * (p_write - p_in) * b_in
    reasoning = ey * tt.reasoning_ratio[..., c, m] * p_reason * b_out
    inputs = ex * p_in * b_in + cache + write
    return ex * p_in * b_in + ey * p_out * b_out + cache + write + reasoning, inputs


def batch_shares(tt: TaskTable, step_share: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Each step's share of requests through the batch API: its own, else (NaN) the category's."""
    return np.where(np.isnan(step_share), tt.batch_share[..., c], step_share)
