"""Invoice prices from a price map: batch, cache write, reasoning and long-context fields imported; manual
overrides kept and shown; unused map fields reported; prices_from recorded; provenance in compare, report, diff."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import routecalc
from routecalc import prices
from routecalc.cli import app
from routecalc.worksheet import load_worksheet, parse_yaml, validate_worksheet
from routecalc.worksheet.pricing import price_provenance

DATA = Path(__file__).resolve().parent / "data"
PRICE_MAP = DATA / "prices-invoice.json"
WS = DATA / "ws-invoice.yaml"
SUPPORT = Path(__file__).resolve().parent.parent / "worksheets" / "support-triage.yaml"
TODAY = dt.date(2026, 11, 25)
runner = CliRunner()


@pytest.fixture(scope="module")
def changes() -> dict[str, prices.PriceChange]:
    pm = prices.load_price_map(PRICE_MAP)
    return {c.model: c for c in prices.price_updates(load_worksheet(WS), pm)}


def values(c: prices.PriceChange, attr: str = "fields") -> dict[str, float | int | None]:
    return {f.field: f.new for f in getattr(c, attr)}


def test_every_invoice_field_is_imported(changes) -> None:
    # per token x 1e6 = per 1M tokens: 1.25e-6 -> 1.25, 6.25e-7 -> 0.625, ...; the tier's threshold "200k" = 200,000
    assert values(changes["long"]) == {
        "price_in": 1.25,
        "price_out": 10.0,
        "price_cache": 0.125,
        "price_in_batch": 0.625,
        "price_out_batch": 5.0,
        "long_context.above_tokens": 200_000,
        "long_context.price_in": 2.5,
        "long_context.price_out": 15.0,
        "long_context.price_cache": 0.25,
        "context_window": 1_048_576,
    }
    # cache writes 3.75e-6 -> 3.75; the worksheet's own long_context stays (the map has no tier for this model)
    assert values(changes["cache"]) == {
        "price_cache": 0.3,
        "price_cache_write": 3.75,
        "price_in_batch": 1.5,
        "price_out_batch": 7.5,
        "context_window": 200_000,
    }


def test_manual_prices_are_kept_and_shown_as_overridden(changes) -> None:
    think = changes["think"]
    assert think.status == "changed" and values(think) == {"context_window": 400_000}  # not a price: updated
    # the lowest tier (128k of 128k and 256k); its output price is the standard one (the map gives none above 128k)
    assert values(think, "overridden") == {
        "price_in": 2.0,
        "price_out": 8.0,
        "price_reasoning": 12.0,
        "long_context.above_tokens": 128_000,
        "long_context.price_in": 4.0,
        "long_context.price_out": 8.0,
    }
    assert not think.from_map
    assert "think: price_source: manual — kept its own price_in" in "\n".join(prices.warnings(list(changes.values())))


def test_unused_map_fields_are_reported_not_dropped(changes) -> None:
    assert changes["long"].unused == ("cache_read_input_token_cost_batches", "input_cost_per_token_priority")
    # the map bills long's batch cache reads at the standard 0.125 per 1M; routecalc applies the batch discount
    assert changes["long"].notes == (
        "cache_read_input_token_cost_batches is 0.125 USD per 1M tokens; routecalc bills 0.0625 (the batch discount "
        "of input, 0.5x, applied to cache_read_input_token_cost)",
    )
    # cache's batch cache price 1.5e-7 = 3e-7 x 0.5: what routecalc derives, so it is not listed
    assert changes["cache"].unused == ("cache_creation_input_token_cost_above_1hr",)
    assert changes["think"].unused == ("input_cost_per_token_above_256k_tokens",)
    summary = prices.unused_summary(list(changes.values()))
    assert summary is not None and "input_cost_per_token_priority (long)" in summary


def test_update_text_writes_nested_and_new_fields_and_records_the_source(changes) -> None:
    old = WS.read_text()
    record = prices.prices_from_record(
        {"source": "litellm bundled price map", "version": "1.110.2", "date": TODAY}, list(changes.values())
    )
    assert record["models"] == ["long", "cache"]  # think is manual: not priced from the map
    new = prices.update_worksheet_text(old, list(changes.values()), "ws", record)
    expected = (
        old.replace(
            "models:\n",
            'prices_from: {source: "litellm bundled price map", version: "1.110.2", date: 2026-11-25, '
            'models: ["long", "cache"]}\nmodels:\n',
        )
        .replace(
            "    price_in: 1.00\n    price_out: 8.00\n",
            "    price_in: 1.25\n    price_out: 10.00\n    price_cache: 0.125\n    price_in_batch: 0.625\n"
            "    price_out_batch: 5.00\n"
            "    long_context: {above_tokens: 200000, price_in: 2.5, price_out: 15.0, price_cache: 0.25}\n"
            "    context_window: 1048576\n",
        )
        .replace(
            "    price_out: 15.00\n    long_context:",
            "    price_out: 15.00\n    price_cache: 0.30\n    price_cache_write: 3.75\n    price_in_batch: 1.50\n"
            "    price_out_batch: 7.50\n    long_context:",
        )
        .replace(
            "      price_out: 22.50\n    latency",
            "      price_out: 22.50\n    context_window: 200000\n    latency",
        )
        .replace("    price_out: 6.00\n", "    price_out: 6.00\n    context_window: 400000\n")  # after its sibling
    )
    assert new == expected
    ws = validate_worksheet(parse_yaml(new, "new"))
    assert ws.model("long").long_context.price_cache == 0.25
    assert ws.model("think").price_in == 1.5  # manual: kept
    assert ws.prices_from.date == TODAY
    # a second update replaces the record where it stands
    again = prices.update_worksheet_text(new, [], "ws", {**record, "date": dt.date(2026, 12, 1)})
    assert again == new.replace("date: 2026-11-25", "date: 2026-12-01")


def test_an_existing_block_record_is_replaced_whole() -> None:
    text = WS.read_text().replace(
        "models:\n", "prices_from:\n  source: typed from the invoice   # by hand\n  date: 2026-10-01\n\nmodels:\n"
    )
    new = prices.update_worksheet_text(text, [], "ws", {"source": "x.json", "version": "sha256:0123", "date": TODAY})
    # the whole block (its comments too) becomes one line; the blank line after it stays
    assert 'prices_from: {source: "x.json", version: "sha256:0123", date: 2026-11-25}\n\nmodels:\n' in new
    assert parse_yaml(new, "new")["prices_from"] == {"source": "x.json", "version": "sha256:0123", "date": TODAY}


def test_cli_update_records_prices_from_and_reports(tmp_path: Path) -> None:
    w = tmp_path / "ws.yaml"
    w.write_bytes(WS.read_bytes())
    args = ["prices", "update", str(w), "--from", str(PRICE_MAP), "--today", "2026-11-25", "--in-place"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "manual: kept (+33.3%)" in out  # think's price_in 1.50 -> the map's 2.00, kept
    assert "note: price-map fields the estimate does not use" in out
    assert "input_cost_per_token_above_256k_tokens (think)" in out
    ws = load_worksheet(w)
    digest = prices.source_record(PRICE_MAP, TODAY)["version"]
    assert digest.startswith("sha256:") and len(digest) == 19
    assert ws.prices_from.model_dump() == {
        "source": str(PRICE_MAP),
        "version": digest,
        "date": TODAY,
        "models": ["long", "cache"],
    }
    assert ws.model("long").price_in_batch == 0.625


def test_missing_models_are_said_prominently_with_the_way_out(tmp_path: Path) -> None:
    w = tmp_path / "ws.yaml"
    w.write_text(WS.read_text().replace("vertex_ai/long-model", "vertex_ai/nope-model"))
    result = runner.invoke(app, ["prices", "update", str(w), "--from", str(PRICE_MAP)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]  # before the table
    assert first.startswith("1 of 3 models are not in the price map") and "long" in first
    assert "use a newer map (--from FILE)" in " ".join(result.output.split())


@pytest.mark.litellm
def test_the_pinned_map_lacks_the_support_worksheets_claude_models() -> None:
    """litellm 1.110.2's map has no anthropic/claude-3-5-haiku-20241022 or claude-sonnet-4-20250514 key: the
    update says so first and points to a newer map."""
    if importlib.util.find_spec("litellm") is None:
        pytest.skip("litellm is not installed (pip install 'routecalc[litellm]')")
    result = runner.invoke(app, ["prices", "update", str(SUPPORT)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    first = " ".join(result.output.split("Price map:")[0].split())
    assert first.startswith("2 of 4 models are not in the price map")
    assert "claude-3-5-haiku, claude-sonnet-4" in first
    assert "pass --from model_prices_and_context_window.json" in first


# ---------------------------------------------------------------------------------------------------------
# Provenance in compare, report and diff


def test_provenance_sentences() -> None:
    typed = price_provenance(load_worksheet(SUPPORT))
    assert typed.text.startswith("Prices: as typed in the worksheet (no prices_from recorded")
    ws = load_worksheet(WS)
    doc = ws.as_document() | {
        "prices_from": {"source": "litellm bundled price map", "version": "1.110.2", "date": TODAY, "models": ["long"]},
        "discounts": {"anthropic": 0.15},
    }
    p = price_provenance(validate_worksheet(doc))
    assert p.text == (
        "Prices: litellm bundled price map (version 1.110.2, applied 2026-11-25) for long; as typed: cache; "
        "set by hand (price_source: manual): think; negotiated discounts: anthropic 15% off."
    )
    assert p.to_dict()["models_as_typed"] == ["cache"]


def test_compare_shows_the_price_source(tmp_path: Path) -> None:
    w = tmp_path / "ws.yaml"
    w.write_text(
        WS.read_text().replace("models:\n", 'prices_from: {source: "Acme invoice", date: 2026-11-02}\nmodels:\n')
    )
    table = runner.invoke(app, ["compare", str(w), "--samples", "2000"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    expected = "Prices: Acme invoice (applied 2026-11-02) for long, cache; set by hand (price_source: manual): think."
    assert expected in table.output
    out = runner.invoke(app, ["compare", str(w), "--samples", "2000", "--format", "json"])
    assert json.loads(out.stdout)["prices"] == {
        "source": "Acme invoice",
        "version": None,
        "date": "2026-11-02",
        "models_from_source": ["long", "cache"],
        "models_as_typed": [],
        "models_manual": ["think"],
        "discounts": {},
    }


def test_diff_shows_both_sides_price_sources() -> None:
    ws = load_worksheet(WS)
    repriced, notes, label = prices.reprice(ws, PRICE_MAP, today=TODAY)
    assert label == str(PRICE_MAP) and repriced.prices_from.date == TODAY
    assert any("does not use" in n for n in notes)
    from routecalc.diff import diff_comparisons
    from routecalc.report.diff import diff_markdown

    before = routecalc.compare(ws, samples=2000, seed=1)
    after = routecalc.compare(repriced, samples=2000, seed=1)
    d = diff_comparisons(before, after, ws, repriced, TODAY)
    md = diff_markdown(d)
    assert "_Prices before: as typed in the worksheet" in md
    assert f"_Prices after: {PRICE_MAP} (version sha256:" in md
    assert d.to_dict()["prices"]["after"]["models_from_source"] == ["long", "cache"]
    # the new fields are price changes too: long's batch input none -> 0.625 per 1M
    long = next(c for c in d.price_changes if c.model == "long")
    assert {f.field: (f.old, f.new) for f in long.fields}["price_in_batch"] == (None, 0.625)


def test_report_states_the_price_source_and_the_invoice_prices() -> None:
    from routecalc.report.build import report_document
    from routecalc.report.document import to_markdown
    from tests.test_billing import billing_sheet

    ws = validate_worksheet(billing_sheet())
    md = to_markdown(report_document(ws, routecalc.compare(ws, samples=2000), None, TODAY))
    assert "Prices: as typed in the worksheet" in md and "negotiated discounts: anthropic 10% off" in md
    assert "Invoice prices besides the list prices above:" in md
    # model a: batch 0.625 / 5.00, reasoning 1.5 x at 12, long context above 200,000 tokens at 2.50 / 15.00
    assert (
        "a (per 1M tokens): batch API $0.625 in / $5.00 out; prompt-cache writes $1.50; 1.5 hidden reasoning "
        "tokens per output token at $12.00; prompts above 200,000 tokens: $2.50 in / $15.00 out, cache read "
        "$0.250, all their tokens."
    ) in md
    assert "batched, long, step 1 (b): 80% of its requests through the batch API." in md


def test_diff_attributes_a_new_long_context_tier() -> None:
    """Old: long-model without a tier; new: the map's tier (2.50 / 15.00 above 200,000 tokens). With prompts of
    p50 150,000 / p95 400,000 tokens the tier alone moves the cost, and the one-input-at-a-time attribution sees it."""
    from routecalc.diff import diff_comparisons

    doc = load_worksheet(WS).as_document()
    doc["tasks"][0]["tokens_in"] = {"p50": 150_000, "p95": 400_000}
    old = validate_worksheet(doc)
    new_doc = old.as_document()
    new_doc["models"][0]["long_context"] = {"above_tokens": 200_000, "price_in": 2.5, "price_out": 15.0}
    new_doc["policies"] = old_policies = [{"name": "long", "kind": "static", "routes": {"all": "long"}}]
    doc["policies"] = old_policies
    old, new = validate_worksheet(doc), validate_worksheet(new_doc)
    d = diff_comparisons(routecalc.compare(old, samples=2000), routecalc.compare(new, samples=2000), old, new, TODAY)
    mover = next(m for m in d.movers if m.input == "prices: long")
    assert "long-context input none → $2.50 per 1M tokens" in mover.detail
    assert "long-context tier added above 200,000 tokens" in mover.detail
    assert mover.attributed and mover.cost_effect["long"] > 0
    assert mover.cost_effect["long"] == pytest.approx(d.policy("long").change_monthly, rel=1e-9)  # the only change
