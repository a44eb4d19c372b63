"""The walk's time-effect inputs: per-request masks (model unavailable, model down) and the per-step trace.

Both implementations must give the same bits with masks and traces, as they do without them.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

import routecalc
from routecalc.engine.chunk import Chunk, walk_sums
from routecalc.engine.compiled import numba_available, walk_numba
from routecalc.engine.histogram import latency_bins
from routecalc.engine.numpy_walk import walk_numpy
from routecalc.engine.walk import (
    ANSWERED,
    AVAILABLE,
    DOWN_5XX,
    DOWN_TIMEOUT,
    FAILED,
    GOOD,
    UNAVAILABLE,
    Walked,
    Workspace,
    pack,
)
from tests.helpers import fixed_model, two_model_sheet, with_policies
from tests.test_engine_mc import joint_sheet, rich_sheet


def hedged_sheet() -> dict:
    sheet = rich_sheet()
    sheet["policies"].append(
        {"name": "hedged", "kind": "chain", "routes": {"x": [{"hedge": ["a", "b"]}, "c"], "y": ["b", "c"]}}
    )
    return sheet


def _walk_all(sheet: dict, n: int, engine: str, mask_seed: int | None, trace: bool) -> list[dict]:
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(sheet))
    chunk = Chunk(problem, 10, np.zeros((1, 1, 1), dtype=np.int32), threading.Lock(), "numpy")
    ws = Workspace()
    req = chunk.draw(np.random.default_rng(11), n, ws)
    out = []
    for p, T in enumerate(chunk.tables):
        key, d, cfg = chunk.walk_inputs(p, req, ws)
        mask = None
        if mask_seed is not None:  # every code, on every step
            mask = np.random.default_rng(mask_seed + p).choice(
                np.array([0, 0, 0, 1, 2, 3, 4], dtype=np.int8), size=(req.S, n)
            )
        if engine == "numba":
            w = walk_numba(T, key, req.cat, req.x, req.y, d, cfg, None, pack(T), mask=mask, trace=trace)
        else:
            w = walk_numpy(T, key, req.cat, req.x, req.y, d, cfg, None, mask=mask, trace=trace)
            sums, tok_sums = walk_sums(w, req.cat, key, cfg.n_categories, T.hedged)  # what the kernel sums
            w = replace(w, sums=sums, tok_sums=tok_sums)
        out.append({f: np.array(getattr(w, f)) for f in Walked.__dataclass_fields__ if getattr(w, f) is not None})
    return out


def _same(a: list[dict], b: list[dict]) -> None:
    for p, (wa, wb) in enumerate(zip(a, b, strict=True)):
        assert wa.keys() == wb.keys()
        for name in wa:
            np.testing.assert_array_equal(wa[name], wb[name], err_msg=f"policy {p}: {name}")


@pytest.mark.parametrize("make", [rich_sheet, joint_sheet, hedged_sheet], ids=["independent", "joint", "hedged"])
def test_compiled_walk_with_masks_and_trace_gives_the_same_bytes(make) -> None:
    if not numba_available():
        pytest.skip("numba is not installed (pip install routecalc[fast])")
    plain = _walk_all(make(), 20_000, "numpy", mask_seed=5, trace=True)
    compiled = _walk_all(make(), 20_000, "numba", mask_seed=5, trace=True)
    _same(plain, compiled)
    assert any((w["trace"] >= 0).any() for w in plain)  # the trace says something


def test_no_mask_and_an_all_available_mask_change_nothing() -> None:
    sheet = hedged_sheet()
    bare = _walk_all(sheet, 5_000, "numpy", mask_seed=None, trace=False)
    traced = _walk_all(sheet, 5_000, "numpy", mask_seed=None, trace=True)
    for w in traced:
        del w["trace"]
    _same(bare, traced)
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(sheet))
    chunk = Chunk(problem, 10, np.zeros((1, 1, 1), dtype=np.int32), threading.Lock(), "numpy")
    ws = Workspace()
    req = chunk.draw(np.random.default_rng(11), 5_000, ws)
    for p, T in enumerate(chunk.tables):
        key, d, cfg = chunk.walk_inputs(p, req, ws)
        zeros = np.zeros((req.S, 5_000), dtype=np.int8)
        w = walk_numpy(T, key, req.cat, req.x, req.y, d, cfg, None, mask=zeros)
        np.testing.assert_array_equal(w.cost, bare[p]["cost"])
        np.testing.assert_array_equal(w.lat, bare[p]["lat"])
        np.testing.assert_array_equal(w.tries, bare[p]["tries"])


def _one(sheet: dict, policy: str, code: list[int], engine: str, n: int = 4) -> Walked:
    """Walk ``n`` requests of one policy with the mask ``code`` (one code per step, the same for every request)."""
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(sheet))
    p = problem.chains.names.index(policy)
    chunk = Chunk(problem, 10, np.zeros((1, 1, 1), dtype=np.int32), threading.Lock(), "numpy")
    ws = Workspace()
    req = chunk.draw(np.random.default_rng(3), n, ws)
    key, d, cfg = chunk.walk_inputs(p, req, ws)
    T = chunk.tables[p]
    mask = np.repeat(np.array(code, dtype=np.int8)[: req.S, None], n, axis=1)
    if engine == "numba":
        return walk_numba(T, key, req.cat, req.x, req.y, d, cfg, None, pack(T), mask=mask, trace=True)
    return walk_numpy(T, key, req.cat, req.x, req.y, d, cfg, None, mask=mask, trace=True)


def fixed_pair() -> dict:
    """small: $0.002 a request, answers in 0.5 + 500 x 0.01 = 5.5 s; large: $0.020, 1 + 500 x 0.02 = 11 s;
    no random failures; timeouts cost 7 s (small) and 9 s (large), fast errors 0.5 s; 1 retry, 0.25 s backoff."""
    sheet = two_model_sheet(defaults={"retries": 1, "backoff_s": 0.25})
    sheet["models"] = [
        fixed_model("small", 1.0, 2.0, ttft=0.5, tpot=0.01, timeout_s=7),
        fixed_model("large", 10.0, 20.0, ttft=1.0, tpot=0.02, timeout_s=9),
    ]
    return with_policies(
        sheet,
        {"name": "static", "kind": "static", "routes": {"t": "small"}},
        {"name": "fallback", "kind": "fallback", "routes": {"t": ["small", "large"]}},
    )


ENGINES = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="no numba"))]


@pytest.mark.parametrize("engine", ENGINES)
def test_unavailable_model_is_skipped_for_free(engine: str) -> None:
    # static: nothing else to go to -> failed, no try, no cost, no latency
    w = _one(fixed_pair(), "static", [UNAVAILABLE], engine)
    assert (w.outcome == FAILED).all() and (w.cost == 0).all() and (w.lat == 0).all()
    assert w.tries.sum() == 0 and w.fb.all() and (w.trace[0] == -2).all()
    # fallback: straight to large, which answers in 11 s for $0.020
    w = _one(fixed_pair(), "fallback", [UNAVAILABLE, AVAILABLE], engine)
    assert (w.answer_model == 1).all()
    np.testing.assert_allclose(w.lat, 11.0)
    np.testing.assert_allclose(w.cost, 0.020)
    assert (w.trace[0] == -2).all() and (w.trace[1] == ANSWERED).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_down_model_fails_every_try(engine: str) -> None:
    # timeouts: 2 tries x 7 s + one 0.25 s backoff = 14.25 s, then large: 11 s -> 25.25 s
    w = _one(fixed_pair(), "fallback", [DOWN_TIMEOUT, AVAILABLE], engine)
    np.testing.assert_allclose(w.lat, 14.25 + 11.0)
    np.testing.assert_allclose(w.cost, 0.020)  # failed tries bill nothing
    assert (w.trace[0] == 2).all() and (w.trace[1] == ANSWERED).all()
    assert w.tries[0].sum() == 2 * 4 and w.fb.all()
    # 5xx: 2 x 0.5 s + 0.25 s = 1.25 s; both models down: failed after 1.25 + (2 x 0.5 + 0.25) = 2.5 s
    w = _one(fixed_pair(), "fallback", [DOWN_5XX, DOWN_5XX], engine)
    np.testing.assert_allclose(w.lat, 2.5)
    assert (w.outcome == FAILED).all() and (w.trace == 2).all()
    # nothing down: small answers (5.5 s), 80 % good
    w = _one(fixed_pair(), "static", [AVAILABLE], engine, n=2_000)
    np.testing.assert_allclose(w.lat, 5.5)
    assert (w.trace[0] == ANSWERED).all()
    assert abs((w.outcome == GOOD).mean() - 0.8) < 4 * np.sqrt(0.8 * 0.2 / 2_000)


@pytest.mark.parametrize("make", [rich_sheet, joint_sheet, hedged_sheet], ids=["independent", "joint", "hedged"])
def test_compiled_walk_summing_as_it_walks_gives_the_numpy_sums_and_bins(make) -> None:
    """The Monte Carlo engine's fast path: per-request arrays left unwritten, the kernel's sums and latency bins
    equal, bit for bit, what the numpy walk's per-request arrays add up to (np.bincount, row order) and bin to."""
    if not numba_available():
        pytest.skip("numba is not installed (pip install routecalc[fast])")
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(make()))
    chunk = Chunk(problem, 10, np.zeros((1, 1, 1), dtype=np.int32), threading.Lock(), "numpy")
    ws = Workspace()
    req = chunk.draw(np.random.default_rng(3), 30_000, ws)
    for p, T in enumerate(chunk.tables):
        key, d, cfg = chunk.walk_inputs(p, req, ws)
        plain = walk_numpy(T, key, req.cat, req.x, req.y, d, cfg)
        sums, tok_sums = walk_sums(plain, req.cat, key, cfg.n_categories, T.hedged)
        bins = 100
        fast = walk_numba(T, key, req.cat, req.x, req.y, d, cfg, None, pack(T), per_request=False, bins=bins)
        np.testing.assert_array_equal(fast.sums, sums, err_msg=f"policy {p}")
        np.testing.assert_array_equal(fast.tok_sums, tok_sums, err_msg=f"policy {p}")
        B = 8 * bins
        np.testing.assert_array_equal(fast.bin_key, req.cat * B + latency_bins(plain.lat, bins))
        for name in ("outcomes", "escalated", "fell_back", "answered", "tries", "successes", "served"):
            np.testing.assert_array_equal(getattr(fast, name), getattr(plain, name), err_msg=f"policy {p}: {name}")
