"""JSON Schemas (draft 2020-12) of routecalc's JSON outputs, one per output kind (``routecalc.contract.OUTPUTS``).

Built here from small helpers and shipped as ``routecalc/schema/output-<kind>.schema.json`` (a test keeps the
files equal to these). Top-level fields and those of the main records are closed (``additionalProperties:
false``), so a field added to an output without its schema fails the schema test; free-form maps (model ->
share, category -> probability) are typed by their values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routecalc.contract import OUTPUTS

Schema = dict[str, Any]

CONVENTION = (
    "Units: money in the document's `currency` (the worksheet's), per request (`_per_request`) or per month "
    "(`monthly_`, `_monthly`); `_s` seconds; `_tokens` tokens; shares, rates, probabilities and quality are "
    "fractions in [0, 1]; `_pct` is a percentage; a cost change is new minus old (or policy minus baseline): "
    "positive costs more. NaN and infinity are written as null."
)


def _t(kind: str | list[str], description: str | None = None, **extra: Any) -> Schema:
    out: Schema = {"type": kind, **extra}
    if description:
        out["description"] = description
    return out


def num(description: str | None = None) -> Schema:
    return _t("number", description)


def num_or_null(description: str | None = None) -> Schema:
    return _t(["number", "null"], description)


def frac(description: str | None = None) -> Schema:
    return _t("number", description, minimum=0, maximum=1)


def frac_or_null(description: str | None = None) -> Schema:
    return _t(["number", "null"], description, minimum=0, maximum=1)


def money(description: str | None = None) -> Schema:
    return num(description)


def integer(description: str | None = None, minimum: int | None = 0) -> Schema:
    return _t("integer", description) | ({"minimum": minimum} if minimum is not None else {})


def string(description: str | None = None, **extra: Any) -> Schema:
    return _t("string", description, **extra)


def str_or_null(description: str | None = None) -> Schema:
    return _t(["string", "null"], description)


BOOL: Schema = {"type": "boolean"}
BOOL_OR_NULL: Schema = {"type": ["boolean", "null"]}


def array(items: Schema, description: str | None = None, **extra: Any) -> Schema:
    return _t("array", description, items=items, **extra)


def pair(items: Schema, description: str | None = None) -> Schema:
    return array(items, description, minItems=2, maxItems=2)


def mapping(values: Schema, description: str | None = None) -> Schema:
    return _t("object", description, additionalProperties=values)


def obj(
    required: dict[str, Schema], optional: dict[str, Schema] | None = None, description: str | None = None
) -> Schema:
    """A closed object: every ``required`` field present, ``optional`` ones allowed, nothing else."""
    props = {**required, **(optional or {})}
    return _t("object", description, additionalProperties=False, required=list(required), properties=props)


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def before_after(values: Schema) -> Schema:
    return obj({"before": values, "after": values})


def document(
    output: str, title: str, description: str, fields: dict[str, Schema], optional: dict | None = None
) -> Schema:
    """The whole document of one output kind: ``schema_version`` and ``output`` first, then its fields."""
    head = {
        "schema_version": {"const": OUTPUTS[output], "description": "Version of this output's schema."},
        "output": {"const": output, "description": "Which routecalc output this document is."},
    }
    body = obj({**head, **fields}, optional)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://routecalc.invalid/schema/output-{output}-{OUTPUTS[output]}.json",
        "title": title,
        "description": f"{description} {CONVENTION}",
        **body,
    }


MONTE_CARLO = obj(
    {
        "samples": integer("Monte Carlo requests simulated.", 1),
        "seed": integer("Seed: same seed, same numbers."),
        "percentile_histogram_relative_error": frac("Resolution of a percentile read from the histograms."),
    }
)


# ---------------------------------------------------------------------------------------------------------
# compare


def _compare_category() -> Schema:
    step = obj(
        {
            "step": integer("Chain step, 0-based."),
            "target_s": num("The step's own P95 latency target."),
            "served": frac("Share of the category's requests answered at this step."),
            "p95_s": num_or_null("P95 end-to-end latency of those requests (null: it serves none)."),
            "ok": BOOL,
        }
    )
    return obj(
        {
            "category": string(),
            "share": frac("Share of all requests."),
            "cost_per_request": money(),
            "quality": frac("Share delivered with a good answer (expected value)."),
            "quality_threshold": frac(),
            "quality_ok": BOOL,
            "p95_s": num_or_null("P95 latency (Monte Carlo)."),
            "p95_ci_s": pair(num_or_null(), "95 % CI of the P95 [low, high]."),
            "budget_s": num_or_null("P95 latency budget (null: none)."),
            "latency_ok": BOOL,
            "ok": _t("boolean", "Meets the quality threshold, the budget and any step targets."),
            "escalation": frac("Share rejected by at least one gate."),
            "fallback": frac_or_null(
                "Share that abandoned a step after provider errors and went on; null where no step falls back "
                "(those requests fail and are in the policy's `failed`)."
            ),
            "fallback_route": _t("boolean", "Some step sends provider errors on to another step."),
            "steps": array(step, "Chain steps with their own latency target."),
        }
    )


def _compare_policy() -> Schema:
    return obj(
        {
            "name": string(),
            "kind": string("static, cascade, fallback or chain."),
            "description": str_or_null(),
            "is_baseline": BOOL,
            "meets_targets": BOOL,
            "nearest_miss": str_or_null("The worst shortfall, as a sentence; null when every target is met."),
            "cost_per_request": money("Expected value."),
            "cost_per_request_mc": num_or_null("Monte Carlo estimate."),
            "cost_per_request_ci95": num_or_null("Half-width of the Monte Carlo 95 % CI."),
            "monthly_cost": money(),
            "cost_change_monthly": num_or_null("This policy minus the baseline, per month: positive costs more."),
            "cost_change_pct": num_or_null("The same, in percent of the baseline's monthly cost."),
            "token_cost_monthly": money(),
            "gate_cost_monthly": money(),
            "human_cost_monthly": money(),
            "router_cost_monthly": money("Classifiers' spend."),
            "deadline_waste_monthly": money("Spend on tries abandoned at a deadline."),
            "risk_per_request": money("Operational risk: cost_bad_answer x delivered bad + cost_failed x failed."),
            "risk_monthly": money(),
            "quality": frac(),
            "quality_mc": frac_or_null(),
            "quality_ci95": num_or_null("Half-width of the Monte Carlo 95 % CI (fraction)."),
            "quality_if_independent": frac_or_null("Quality if pass rates were independent along a chain."),
            "delivered_bad": frac(),
            "failed": frac("Share with no answer."),
            "human_review": frac(),
            "overflow": frac("Share longer than some step's context window."),
            "late": frac("Share that abandoned a try at its deadline."),
            "escalation": frac(),
            "fallback": frac_or_null("As per category: null when no step falls back."),
            "fallback_route": BOOL,
            "latency_mean_s": num(),
            "latency_mean_mc_s": num_or_null(),
            "p50_s": num_or_null(),
            "p95_s": num_or_null(),
            "p99_s": num_or_null(),
            "answered": mapping(frac(), "Model -> share of requests it answered."),
            "tries_per_request": mapping(num(), "Model -> provider tries per request, failed ones included."),
            "served_by_step": array(frac(), "Share answered at each chain step."),
            "categories": array(_compare_category()),
        }
    )


def _interval(prefix: str, values: Schema) -> dict[str, Schema]:
    return {f"{prefix}_{k}": values for k in ("p05", "p50", "p95")}


def _uncertainty() -> Schema:
    policy = obj(
        {
            "name": string(),
            **_interval("monthly_cost", num_or_null()),
            **_interval("cost_change_monthly", num_or_null()),
            **_interval("quality_fraction", frac_or_null()),
            "probability_meets_targets": frac(),
            "probability_winner": frac(),
            "probability_quality_ok_by_category": mapping(frac()),
            "latency_ok_point_estimate": BOOL,
        }
    )
    counted = obj(
        {"path": string(), "what": string(), "category": str_or_null(), "k": integer(), "n": integer()},
        {"model": str_or_null()},
    )
    return obj(
        {
            "draws": integer(minimum=1),
            "seed": integer(),
            "interval_level": frac(),
            "currency": string(),
            "has_counts": BOOL,
            "counted_inputs": array(counted),
            "fixed_no_counts": array(string()),
            "notes": array(string()),
        },
        {
            "message": string(),
            "policies": array(policy),
            "probability_no_winner": frac(),
            "sample_advice": nullable(_t("object")),
        },
        "compare --uncertainty: intervals and probabilities from the posteriors of the eval counts.",
    )


def _patterns() -> Schema:
    return obj(
        {"classifiers": array(_t("object")), "deadlines": array(_t("object"))},
        description="What the worksheet's classifiers and deadlines buy (monthly money, fractions, seconds).",
    )


ADVICE = obj(
    {
        "kind": string("What the advice is about (e.g. escalation, direct_route)."),
        "text": string("The advice in words."),
        "policy": str_or_null(),
        "category": str_or_null(),
        "model": str_or_null(),
        "recommends": str_or_null("The route it recommends (`<category> -> <model>`), null when none."),
        "numbers": nullable(mapping(num(), "What backs it (expected values, per request).")),
    }
)


CHECK = obj(
    {
        "check": {"enum": ["expect", "require_winner", "max_monthly_cost"]},
        "ok": BOOL,
        "message": string(),
    }
)


PRICE_SOURCE = obj(
    {
        "source": str_or_null("The price map recorded in prices_from; null: prices as typed."),
        "version": str_or_null("The map's version (a LiteLLM version, or sha256:<12 hex> of a --from file)."),
        "date": str_or_null("When the map was applied (YYYY-MM-DD)."),
        "models_from_source": array(string()),
        "models_as_typed": array(string()),
        "models_manual": array(string(), "Models marked price_source: manual."),
        "discounts": mapping(frac(), "Provider -> negotiated fraction off every price."),
    },
    description="Where the worksheet's prices come from.",
)


def compare_schema() -> Schema:
    return document(
        "compare",
        "routecalc compare --format json",
        "Every policy side by side with the winner.",
        {
            "routecalc_version": string(),
            "worksheet": string(),
            "currency": string(),
            "requests_per_month": num(),
            "days_per_month": num(),
            "baseline": str_or_null(),
            "winner": str_or_null("The policy meeting every target by the winner rule; null: none does."),
            "objective": {"enum": ["cost", "cost+risk", "latency"]},
            "winner_rule": string(),
            "strongest_model": str_or_null(),
            "monte_carlo": MONTE_CARLO,
            "warnings": array(string()),
            "advisories": array(string(), "The advice in words (each advice[].text)."),
            "advice": array(ADVICE, "Advisories with what backs them."),
            "policies": array(_compare_policy()),
        },
        {
            "uncertainty": _uncertainty(),
            "patterns": _patterns(),
            "checks": array(CHECK, "compare --expect / --require-winner / --max-monthly-cost verdicts."),
            "prices": PRICE_SOURCE,
        },
    )


# ---------------------------------------------------------------------------------------------------------
# diff


def diff_schema() -> Schema:
    policy = obj(
        {
            "name": string(),
            "kind": string(),
            "monthly_cost": before_after(num_or_null()),
            "cost_change_monthly": num_or_null("After minus before: positive costs more."),
            "cost_change_pct": num_or_null(),
            "cost_change_vs_baseline_monthly": before_after(num_or_null()),
            "quality": before_after(frac_or_null()),
            "p95_s": before_after(num_or_null()),
            "p95_change_s": num_or_null(),
            "p95_noise_s": num_or_null("P95 changes smaller than this are Monte Carlo noise."),
            "p95_change_is_noise": BOOL,
            "meets_targets": before_after(BOOL_OR_NULL),
            "nearest_miss_after": str_or_null(),
        }
    )
    effect = obj(
        {
            "input": string(),
            "detail": string(),
            "attributed": BOOL,
            "cost_effect_monthly": mapping(num(), "Focus policy -> monthly cost change from this input alone."),
            "quality_effect": mapping(num(), "Focus policy -> quality change (fraction) from this input alone."),
        }
    )
    price_value = before_after(num_or_null())
    price = _t(
        "object",
        "A model's changed prices (per `price_unit`) and context window (tokens), before and after.",
        required=["model"],
        properties={"model": string()},
        additionalProperties=price_value,
    )
    stale = obj({"name": string(), "last_reviewed": string(format="date"), "age_days": integer()})
    return document(
        "diff",
        "routecalc diff --format json",
        "What moving from OLD to NEW does to each policy and to the winner.",
        {
            "worksheet": string(),
            "old": string(),
            "new": string(),
            "currency": string(),
            "price_unit": {"enum": ["per_1m", "per_1k"]},
            "requests_per_month": before_after(num()),
            "baseline": before_after(str_or_null()),
            "winner": obj({"before": str_or_null(), "after": str_or_null(), "flips": BOOL}),
            "reasons": array(string()),
            "policies": array(policy),
            "attribution": obj(
                {
                    "method": string(),
                    "focus_policies": array(string()),
                    "inputs": array(effect),
                    "interaction_monthly": mapping(num()),
                }
            ),
            "price_changes": array(price),
            "stale_categories": array(stale),
            "stale_after_days": integer(),
            "warnings": array(string()),
            "monte_carlo": obj(
                {
                    "samples": integer(minimum=1),
                    "seed": integer(),
                    "common_random_numbers": BOOL,
                    "percentile_histogram_relative_error": frac(),
                }
            ),
            "today": string(format="date"),
            "prices": before_after(nullable(PRICE_SOURCE)),
        },
    )


# ---------------------------------------------------------------------------------------------------------
# validate


def validate_schema() -> Schema:
    problem = obj(
        {
            "path": string("Field path such as tasks[3].traffic_share; empty for the whole file."),
            "message": string(),
        }
    )
    return document(
        "validate",
        "routecalc validate --format json",
        "Whether a worksheet (with its scenario overlays) is valid, every problem with its field path, and the "
        "warnings. Exit code 2 when not valid.",
        {
            "worksheet": string("The file as given."),
            "valid": BOOL,
            "problems": array(problem),
            "unlisted_problems": integer("Problems past the listing limit."),
            "warnings": array(string()),
            "summary": nullable(
                obj({"name": string(), "categories": integer(), "models": integer(), "policies": integer()})
            ),
        },
    )


# ---------------------------------------------------------------------------------------------------------
# optimize


def optimize_schema() -> Schema:
    route = obj(
        {
            "category": string(),
            "family": string(),
            "label": string(),
            "steps": array({}),
            "cost_per_request": money(),
            "quality": frac(),
            "delivered_bad": frac(),
            "failed": frac(),
            "latency_mean_s": num(),
            "escalation": frac(),
            "fallback": frac(),
            "risk_per_request": money(),
            "p95_s": num_or_null(),
            "p95_ci_s": nullable(pair(num_or_null())),
        }
    )
    category = obj(
        {
            "category": string(),
            "share": frac(),
            "route": nullable(route),
            "margins": array(_t("object")),
            "candidates": integer(),
            "feasible_by_expected_values": integer(),
            "p95_checked": integer(),
            "nearest_miss": nullable(_t("object")),
            "binding": array(string()),
            "excluded_models": array(obj({"model": string(), "why": string()})),
        }
    )
    totals = obj(
        {
            "cost_per_request": money(),
            "monthly_cost": money(),
            "quality": frac(),
            "delivered_bad": frac(),
            "failed": frac(),
            "latency_mean_s": num(),
            "risk_monthly": money(),
        }
    )
    mix = obj(
        {
            "lam": num("Traffic-weighted quality per unit of spend per request at the budget."),
            "p": frac("Share of the mixed categories' requests sent to the dearer route."),
            "monthly_cost_low": money(),
            "monthly_cost_high": money(),
            "quality_low": frac(),
            "quality_high": frac(),
            "monthly_cost": money(),
            "quality": frac(),
            "routes": array(obj({"category": string(), "cheaper": string(), "dearer": string()})),
        }
    )
    return document(
        "optimize",
        "routecalc optimize --format json",
        "The best route per category over the catalog, as a policy, with the cost-vs-quality frontier.",
        {
            "worksheet": string(),
            "currency": string(),
            "requests_per_month": num(),
            "objective": {"enum": ["cost", "cost+risk", "latency"]},
            "max_chain": integer(minimum=1),
            "mode": {"enum": ["per-category", "min-quality", "budget"]},
            "target": num_or_null("min-quality: a quality fraction; budget: money per month; else null."),
            "per_category_quality_floors": BOOL,
            "candidates": integer(),
            "monte_carlo": obj({"samples": integer(minimum=1), "seed": integer(), "histogram_relative_error": frac()}),
            "policy": nullable(_t("object", "The policy as the worksheet writes it (policies[])")),
            "totals": nullable(totals),
            "baseline": nullable(obj({"name": string(), "monthly_cost": money()})),
            "global_gap": num_or_null("Global modes: distance to the solver's proven bound (0: optimal)."),
            "categories": array(category),
            "frontier": nullable(
                obj(
                    {
                        "exact": BOOL,
                        "basis": string(),
                        "points": array(obj({"monthly_cost": money(), "quality": frac()})),
                    }
                )
            ),
            "budget_mix": nullable(mix),
            "notes": array(string()),
        },
    )


# ---------------------------------------------------------------------------------------------------------
# replay


def replay_schema() -> Schema:
    category = obj(
        {
            "prompts": integer(),
            "quality": frac_or_null(),
            "quality_ci": pair(frac_or_null()),
            "estimate_quality": frac_or_null(),
            "estimate_inside_interval": BOOL,
        }
    )
    policy = obj(
        {
            "name": string(),
            "quality": frac_or_null(),
            "quality_ci": pair(frac_or_null()),
            "cost_per_request": num_or_null(),
            "cost_per_request_ci": pair(num_or_null()),
            "estimate_quality": frac_or_null(),
            "estimate_cost_per_request": num_or_null(),
            "savings_captured": num_or_null("Share of the oracle's savings vs the strong model captured."),
            "categories": mapping(category),
        }
    )
    cq = obj({"cost_per_request": num_or_null(), "quality": frac_or_null()})
    return document(
        "replay",
        "routecalc replay --format json",
        "Every policy replayed on the prompts of an eval file, next to the worksheet's estimate.",
        {
            "worksheet": string(),
            "source": string(),
            "currency": string(),
            "prompts": integer(),
            "repeats": integer(minimum=1),
            "bootstrap": integer(),
            "seed": integer(),
            "categories": array(string()),
            "missing_categories": array(string()),
            "skipped_categories": array(string()),
            "models": array(string()),
            "policies": array(policy),
            "oracle": cq,
            "single_models": mapping(cq),
            "zero_router_aiq": num_or_null(),
            "policies_aiq": num_or_null(),
            "score_router": nullable(mapping(num_or_null())),
            "notes": array(string()),
        },
    )


# ---------------------------------------------------------------------------------------------------------
# prices show, explain, examples


def prices_schema() -> Schema:
    entry = _t(
        "object",
        "The price map's fields for one model key: USD per token (`*_cost_per_token`, `*_token_cost`), "
        "tokens (`max_*_tokens`), and the provider.",
        additionalProperties={"type": ["number", "string", "boolean", "null"]},
    )
    return document(
        "prices",
        "routecalc prices show --format json",
        "Prices and context windows of price-map keys (LiteLLM format: USD per token).",
        {"source": string("The price map file."), "currency": {"const": "USD"}, "models": mapping(entry)},
    )


def explain_schema() -> Schema:
    step = obj(
        {
            "step": integer("1-based."),
            "model": string(),
            "gated": BOOL,
            "reach": frac("Share of the lane's requests that reach this step."),
            "fail": frac("Per try: probability a provider try fails."),
            "tries": num("Expected tries per request that reaches the step."),
            "abandon": frac("Probability the step gives up after its tries (or the prompt overflows it)."),
            "pass_rate": frac(),
            "accept_good": frac("Of an answer: good and accepted (or ungated)."),
            "accept_bad": frac("Of an answer: bad and accepted (or ungated)."),
            "reject": frac("Of an answer: rejected by the gate."),
            "on_reject": str_or_null(),
            "on_failure": str_or_null(),
            "answer_cost": money("Cost of one answer from this step (per request reaching it and answered)."),
            "answer_latency_s": num("Mean time to an answer."),
            "cost_per_request": money("This step's contribution to the lane's expected cost per request."),
            "quality": frac("This step's contribution to the lane's quality."),
            "latency_s": num("This step's contribution to the lane's mean latency."),
        }
    )
    lane = obj(
        {
            "lane": integer(),
            "share": frac("Share of the category's requests taking this lane."),
            "route": string(),
            "steps": array(step),
            "cost_per_request": money(),
            "quality": frac(),
            "failed": frac(),
            "latency_mean_s": num(),
            "arithmetic": array(string(), "The sums a reviewer checks by hand, one line each."),
        }
    )
    return document(
        "explain",
        "routecalc explain --format json",
        "One policy in one category: its chain, each step's reach, pass, reject and failure probabilities, and "
        "the arithmetic of the expected cost, quality and latency, next to the expected-value engine's numbers.",
        {
            "worksheet": string(),
            "policy": string(),
            "category": string(),
            "currency": string(),
            "route": string(),
            "lanes": array(lane),
            "hand": obj({"cost_per_request": money(), "quality": frac(), "latency_mean_s": num()}),
            "engine": obj(
                {
                    "cost_per_request": money(),
                    "quality": frac(),
                    "failed": frac(),
                    "latency_mean_s": num(),
                    "escalation": frac(),
                    "fallback": frac(),
                }
            ),
            "exact": _t("boolean", "The hand arithmetic is the engine's model exactly (see notes otherwise)."),
            "notes": array(string()),
        },
    )


def examples_schema() -> Schema:
    return document(
        "examples",
        "routecalc examples --format json",
        "The example worksheets shipped inside the package (run one with `routecalc compare example:NAME`).",
        {"examples": array(obj({"name": string(), "title": string(), "description": string(), "path": string()}))},
    )


SCHEMAS: dict[str, Callable[[], Schema]] = {
    "compare": compare_schema,
    "diff": diff_schema,
    "validate": validate_schema,
    "optimize": optimize_schema,
    "replay": replay_schema,
    "prices": prices_schema,
    "explain": explain_schema,
    "examples": examples_schema,
}


def output_schema(output: str) -> Schema:
    """The JSON Schema of one output kind (``routecalc schema --output KIND``)."""
    if output in ("sensitivity", "simulate", "backtest"):  # built from the helpers above (here: no import cycle)
        from routecalc.contract.analysis_schemas import backtest_schema, sensitivity_schema, simulate_schema

        return {"sensitivity": sensitivity_schema, "simulate": simulate_schema, "backtest": backtest_schema}[output]()
    return SCHEMAS[output]()
