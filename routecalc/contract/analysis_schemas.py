"""JSON Schemas of the outputs that analyse one policy: ``sensitivity`` (swings and break-evens), ``simulate``
(a month request by request) and ``backtest`` (the estimate of a logged period against the log). Kept apart from :mod:`routecalc.contract.schemas` (the comparison outputs) to keep
each module to one idea; built from the same helpers and registered in its ``SCHEMAS``."""

from __future__ import annotations

from routecalc.contract.schemas import (
    BOOL,
    Schema,
    array,
    document,
    frac,
    frac_or_null,
    integer,
    mapping,
    money,
    num,
    num_or_null,
    obj,
    str_or_null,
    string,
)


def sensitivity_schema() -> Schema:
    value = "In the input's `unit`."
    swing_input = obj(
        {
            "key": string("Stable identifier of the input (kind/model/category)."),
            "label": string("The input in words."),
            "path": string("Where it is in the worksheet (field path)."),
            "kind": string("price_in, pass_rate, traffic_share, latency, ..."),
            "unit": string(
                "Unit of value, low and high: e.g. `USD per 1M tokens`, `fraction`, `tokens`, `s`, "
                "`× today` (a factor of today's value)."
            ),
            "value": num(f"Today's value. {value}"),
            "low": num(f"Lowest value searched for a break-even. {value}"),
            "high": num(f"Highest value searched for a break-even. {value}"),
            "model": str_or_null(),
            "category": str_or_null(),
            "tier": str_or_null("Price tier, where the input is one tier's price."),
            "batched": BOOL,
            "batch_max": num_or_null(),
        }
    )
    swing = obj(
        {
            "input": swing_input,
            "value_low": num("The input moved down by swing_fraction (clipped to its range), in its unit."),
            "value_high": num("The input moved up by swing_fraction (clipped to its range), in its unit."),
            "monthly_cost_low": money("The policy's monthly cost at value_low."),
            "monthly_cost_high": money("The policy's monthly cost at value_high."),
            "savings_monthly_low": num_or_null("Monthly savings against the baseline at value_low (null: none)."),
            "savings_monthly_high": num_or_null("Monthly savings against the baseline at value_high."),
            "quality_fraction_low": frac(),
            "quality_fraction_high": frac(),
            "winner_low": str_or_null("compare's winner at value_low (null: no policy meets every target)."),
            "winner_high": str_or_null("compare's winner at value_high."),
        }
    )
    break_even = obj(
        {
            "input": string("The input's key (swings[].input.key)."),
            "label": string(),
            "path": string(),
            "unit": string(),
            "today": num("Today's value, in unit."),
            "rival": string("The policy compared with."),
            "role": string(
                "The rival's role: runner-up, winner or baseline.", enum=["runner-up", "winner", "baseline"]
            ),
            "direction": string("Which way the input was moved.", enum=["below", "above"]),
            "value": num_or_null("The break-even value, in unit (null: no flip within the searched range)."),
            "searched_to": num("The end of the searched range in this direction, in unit."),
            "before": string("Who compare picks between the two today: a policy name or `neither`."),
            "after": str_or_null("... past the break-even."),
            "reason": str_or_null("What changes there."),
            "monte_carlo_check": str_or_null("Monte Carlo at the break-even, where a P95 budget decides it."),
            "sentence": string("The break-even in words."),
        }
    )
    return document(
        "sensitivity",
        "routecalc sensitivity --format json",
        "Which inputs move the decision: each input swung alone, ranked by effect, and break-even values.",
        {
            "worksheet": string(),
            "currency": string("ISO 4217 code of every money field."),
            "requests_per_month": num(),
            "policy": string("The policy analysed."),
            "winner": str_or_null("compare's winner today (null: none)."),
            "baseline": string(),
            "swing_fraction": num("Relative move of each input, down and up (0.2 = ±20%)."),
            "ranked_by": string("What the swings are ranked by.", enum=["cost", "savings", "quality"]),
            "monthly_cost": money("The policy's monthly cost today."),
            "savings_monthly": num_or_null("Its monthly savings against the baseline (null: it is the baseline)."),
            "quality_fraction": frac(),
            "swings": array(swing),
            "rivals": array(obj({"policy": string(), "role": string()})),
            "break_evens": array(break_even),
            "notes": array(string()),
            "engine_passes": integer("Expected-value engine passes run."),
            "recompiled_settings": integer("Settings evaluated on a re-compiled worksheet."),
            "unbatched_inputs": array(string(), "Input keys evaluated on a re-compiled worksheet."),
        },
    )


def _period(extra: dict[str, Schema] | None = None) -> Schema:
    return obj(
        {
            "requests": integer("Requests that arrived."),
            "spend": money("Spend over the period."),
            "budget": num_or_null("The pro-rated budget for the period (null: no budget rule)."),
            "quality": frac("Share delivered with a good answer (human review counts as good)."),
            "failed": frac("Share with no answer."),
            "latency_mean_s": num_or_null(),
            "p95_s": num_or_null(),
            "p99_s": num_or_null(),
            "breaker_open_min": num("Minutes with a circuit breaker open (summed over models)."),
            "spilled": frac("Share that skipped a model at its rate limit."),
            "queued": frac("Share that waited for a rate limit (queue mode)."),
            "downgraded": frac("Share on the budget rule's routes."),
            "load_routed": frac("Share on the load rule's routes."),
            "fell_back": frac("Share that abandoned a step (failures, breaker, limits)."),
            "outage_failed": integer("Requests failed while some model was down."),
            "outage_timeouts": integer("Tries that timed out on a down model."),
            **(extra or {}),
        }
    )


def simulate_schema() -> Schema:
    day = _period(
        {
            "day": integer("1 = the first day.", 1),
            "date": str_or_null("ISO date (with --start)."),
            "weekday": string(),
        }
    )
    effect = obj(
        {
            "name": string("The time effect: breaker, limits, budget, load, outages."),
            "on": _period(),
            "off": _period(),
            "notes": mapping({"type": ["number", "integer", "string", "boolean", "null"]}, "What it did, counted."),
        }
    )
    outage = obj(
        {
            "model": string(),
            "day": integer(minimum=1),
            "start_s": num("Start, seconds from the start of day 1 (UTC)."),
            "minutes": num(),
            "error": string("What every try gets during it."),
        }
    )
    return document(
        "simulate",
        "routecalc simulate --format json",
        "A month of one policy's traffic simulated request by request in arrival order, with its time effects.",
        {
            "routecalc_version": string(),
            "worksheet": string(),
            "policy": string(),
            "currency": string("ISO 4217 code of every money field (`spend`, `budget`, `cost`)."),
            "days": integer(minimum=1),
            "seed": integer(),
            "bucket_s": num(),
            "start": str_or_null("ISO date of day 1 (null: day 1 is a Monday, no dates)."),
            "requests_per_month": num(),
            "expected_requests": num("Expected arrivals over the simulated days (profile included)."),
            "expected_values_per_request": mapping(
                num(),
                "The per-request engines' means for the policy without time effects: cost (per request), "
                "quality and failed (fractions), latency_s.",
            ),
            "total": _period(),
            "daily": array(day),
            "effects": array(effect, "Each time effect: the month with it (on) and without it (off)."),
            "effects_on": mapping(BOOL, "Which effects the worksheet switches on."),
            "rate_limits_queue": BOOL,
            "outages": array(outage),
            "hourly": mapping(array(num_or_null()), "Per hour of the month: counts, spend, latency sums."),
            "warnings": array(string()),
            "percentile_histogram_relative_error": frac_or_null(),
        },
    )


def backtest_schema() -> Schema:
    err = "Relative error (estimate - logged) / logged; null where the log has no figure."
    line = obj(
        {
            "name": string(),
            "calls_log": num(),
            "calls_est": num(),
            "tokens_in_log": num_or_null("Input tokens of successful calls in the log (null: not logged)."),
            "tokens_in_est": num(),
            "tokens_out_log": num_or_null(),
            "tokens_out_est": num(),
            "cost_log": num_or_null("Logged spend in `currency` (null: the log has no cost)."),
            "cost_est": num(),
            "error": obj({k: num_or_null(err) for k in ("calls", "tokens_in", "tokens_out", "cost")}),
        }
    )
    model = obj(
        {
            "name": string(),
            "calls": num(),
            "failure_log": frac_or_null("Failure rate per call in the log."),
            "failure_est": frac_or_null("The worksheet's failure rate per try."),
            "p50_log": num_or_null("Seconds, successful calls."),
            "p95_log": num_or_null("Seconds, successful calls."),
            "p50_est": num_or_null("Seconds."),
            "p95_est": num_or_null("Seconds."),
            "p50_error": num_or_null(err),
            "p95_error": num_or_null(err),
        }
    )
    return document(
        "backtest",
        "routecalc backtest --format json",
        "The worksheet's estimate of a logged period against the log (and an invoice), per model and category.",
        {
            "worksheet": string(),
            "policy": string(),
            "source": string("The log file."),
            "currency": string(),
            "start": string("First logged call (ISO 8601, UTC)."),
            "days": num("Days the log spans."),
            "requests": num("Requests in the period (given, or calls / calls per request)."),
            "requests_given": BOOL,
            "calls_per_request": num(),
            "worksheet_requests": num("The worksheet's volume for the period."),
            "by_model": array(line),
            "by_category": array(line),
            "total": line,
            "other_cost_est": money("Gates, human review and classifiers in the period: in the total estimate only."),
            "invoice": num_or_null("The --invoice total, in `currency`."),
            "invoice_error": num_or_null(err),
            "models": array(model),
            "skipped_categories": array(obj({"category": string(), "calls": num()})),
            "notes": array(string()),
        },
    )
