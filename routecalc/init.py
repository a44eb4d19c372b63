"""``routecalc init``: a first worksheet in minutes, from a list of models or from a LiteLLM proxy config.

What is known is filled in from the price map (``routecalc.prices``: prices and context windows) or from the
config (models, prices where set, rpm/tpm, timeouts, retries, the fallback chains and aliases the proxy really
runs); everything else (traffic mix, token bands, pass rates, latency, failure rates) is a placeholder marked
``# GUESS`` on its line. The text is validated as a worksheet before it is returned.

From a LiteLLM config, the categories are the names an application can call: the ``model_group_alias``
entries (routecalc's own exports name them ``route-<category>``) and the groups that are neither an alias target
nor a fallback; each category's ``today`` route is its group followed by its fallbacks, as LiteLLM tries them.
So ``routecalc export -t litellm`` of the ``today`` policy gives the config back (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from routecalc.data.calibrate_yaml import GUESS, _flow, _num, _q
from routecalc.errors import InputError
from routecalc.prices import MAP_FIELD, lookup_key, per_unit
from routecalc.worksheet import load_worksheet_text, parse_yaml

DEFAULT_MODELS = ("gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1")
DEFAULT_CATEGORIES = 3
MAX_CATEGORIES = 100
ROUTE_PREFIX = "route-"  # routecalc's LiteLLM export names a category's entry point route-<category>
LATENCY_GUESS = "{ttft_s: {p50: 0.6, p95: 1.5}, tpot_s: 0.015}"
PASS_GUESSES = (0.85, 0.9, 0.95)  # by price rank: cheapest to dearest
LITELLM_DEFAULT_RETRIES = 2  # litellm.Router's num_retries when the config sets none (its docstring: "Defaults to 2")


@dataclass
class Model:
    """A catalog entry to write: known values and which of them are guesses (``guessed``: field -> why)."""

    name: str
    provider: str
    litellm_model: str | None = None
    price_in: float = 0.0
    price_out: float = 0.0
    price_cache: float | None = None
    context_window: int | None = None
    timeout_s: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    source: str = ""  # where the prices came from
    guessed: dict[str, str] = field(default_factory=dict)


@dataclass
class Starter:
    """A worksheet to write, and notes for the user (what was guessed, what could not be carried over)."""

    text: str
    notes: list[str]


def _price_lookup(price_map: dict[str, dict[str, Any]] | None, key: str, provider: str | None) -> str | None:
    if price_map is None:
        return None
    spec = SimpleNamespace(name=key, litellm_model=key if "/" in key else None, provider=provider or "")
    if provider is None and "/" not in key:
        return key if key in price_map else None
    return lookup_key(price_map, spec)  # type: ignore[arg-type]


def _fill_from_map(m: Model, price_map: dict[str, dict[str, Any]] | None, label: str, known: set[str]) -> None:
    """Prices and context window from the price map for the fields not in ``known``; else mark them guessed."""
    key = _price_lookup(price_map, m.litellm_model or m.name, m.provider if m.provider != "unknown" else None)
    entry = price_map.get(key) if price_map is not None and key is not None else None
    if entry is not None and m.provider == "unknown" and isinstance(entry.get("litellm_provider"), str):
        m.provider = entry["litellm_provider"]
    for fld in ("price_in", "price_out", "price_cache"):
        if fld in known:
            continue
        value = entry.get(MAP_FIELD[fld]) if entry is not None else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            setattr(m, fld, per_unit(float(value), 1e6))
        elif fld != "price_cache":
            setattr(m, fld, 0.0)
            why = f"{key!r} has no {MAP_FIELD[fld]}" if entry is not None else "not in the price map"
            m.guessed[fld] = f"{why} ({label}): fill in"
    if "context_window" not in known and entry is not None:
        window = entry.get("max_input_tokens")
        if isinstance(window, int) and not isinstance(window, bool) and window > 0:
            m.context_window = window
    if entry is not None and not {"price_in", "price_out"} <= known:
        m.source = f"prices from {label}, key {key}"


def _model_lines(m: Model) -> list[str]:
    def note(fld: str, text: str = "") -> str:
        why = m.guessed.get(fld)
        return f"   # {GUESS}: {why}" if why else (f"   # {text}" if text else "")

    out = [f"  - name: {_q(m.name)}" + (f"   # {m.source}" if m.source else "")]
    out.append(
        f"    provider: {_q(m.provider)}" + ("   # GUESS: openai, anthropic, ..." if m.provider == "unknown" else "")
    )
    if m.litellm_model:
        out.append(f"    litellm_model: {_q(m.litellm_model)}")
    out.append(f"    price_in: {_num(m.price_in)}" + note("price_in", "per 1M input tokens"))
    out.append(f"    price_out: {_num(m.price_out)}" + note("price_out", "per 1M output tokens"))
    if m.price_cache is not None:
        out.append(f"    price_cache: {_num(m.price_cache)}   # per 1M cached input tokens")
    if m.context_window is not None:
        out.append(f"    context_window: {m.context_window}")
    out.append(f"    latency: {LATENCY_GUESS}   # {GUESS}: measure your own (p50/p95 time to first token, s per token)")
    out.append(f"    failure_rate: 0.01   # {GUESS}: share of tries that fail (timeouts, 429, 5xx)")
    out.append(f"    timeout_share: 0.3   # {GUESS}: share of those failures that are timeouts")
    if m.timeout_s is not None:
        out.append(f"    timeout_s: {_num(m.timeout_s)}")
    else:
        out.append(f"    timeout_s: 60   # {GUESS}: your client's timeout")
    if m.rpm is not None:
        out.append(f"    rpm: {m.rpm}")
    if m.tpm is not None:
        out.append(f"    tpm: {m.tpm}")
    return out


def _pass_guesses(models: list[Model]) -> dict[str, float]:
    """Pass-rate placeholders ranked by price (dearer, better): a starting point only, marked GUESS."""
    order = sorted(models, key=lambda m: (m.price_in + m.price_out, m.name))
    n = len(order)
    out = {}
    for i, m in enumerate(order):
        k = 0 if n == 1 else round(i * (len(PASS_GUESSES) - 1) / (n - 1))
        out[m.name] = PASS_GUESSES[k if n > 1 else 1]
    return out


def _task_lines(categories: list[str], models: list[Model]) -> list[str]:
    share = 1 / len(categories)
    rates = _pass_guesses(models)
    out = ["tasks:"]
    for c in categories:
        out += [
            f"  - name: {_q(c)}",
            f"    traffic_share: {_num(round(share, 6))}   # {GUESS}: this category's share of requests"
            + (" (shares must sum to 1)" if c == categories[0] else ""),
            f"    tokens_in: {{p50: 1000, p95: 3000}}   # {GUESS}: input tokens per request",
            f"    tokens_out: {{p50: 200, p95: 600}}   # {GUESS}: output tokens per request",
            f"    quality_threshold: 0.9   # {GUESS}: the share of good answers you need",
            f"    latency_budget_s: 20   # {GUESS}: the P95 latency you can accept",
            f"    pass_rates:   # {GUESS}: by price rank; replace with eval results ({{passed: N, of: M}}) or run "
            "routecalc calibrate evals",
        ]
        out += [f"      {_q(m.name)}: {_num(rates[m.name])}" for m in models]
        out.append(f"    validator: {{catch: 0.8, false_reject: 0.05}}   # {GUESS}: how well your answer check works")
    if len(categories) * round(share, 6) != 1:
        fix = round(1 - round(share, 6) * (len(categories) - 1), 6)
        out[2] = out[2].replace(f"traffic_share: {_num(round(share, 6))}", f"traffic_share: {_num(fix)}")
    return out


def _header(title: str, lines: list[str]) -> list[str]:
    return [
        f"# {title}",
        *(f"# {line}" for line in lines),
        f"# Every line marked {GUESS} is a placeholder: replace it before trusting the numbers",
        "# (routecalc validate checks the file; routecalc compare runs it).",
        "schema_version: 1",
    ]


def _checked(text: str, source: str) -> str:
    load_worksheet_text(text, source)
    return text


def _near(key: str, price_map: dict[str, dict[str, Any]] | None) -> list[str]:
    """Up to three price-map keys spelled like ``key`` (a typo, a missing provider prefix or date suffix)."""
    if not price_map:
        return []
    import difflib

    keys = [k for k in price_map if k != "sample_spec"]
    return difflib.get_close_matches(key, keys, n=3, cutoff=0.75)


def starter(
    models: list[str] | None = None,
    categories: int = DEFAULT_CATEGORIES,
    price_map: dict[str, dict[str, Any]] | None = None,
    label: str = "price map",
) -> Starter:
    """A commented starter worksheet for ``models`` (price-map keys such as ``gpt-4.1-mini`` or
    ``anthropic/claude-sonnet-4-20250514``) and ``categories`` placeholder categories: one static policy per
    model and a cheapest-first cascade, prices and context windows from ``price_map`` where it has them."""
    names = list(dict.fromkeys(models or DEFAULT_MODELS))
    if not names:
        raise InputError("--models: give at least one model")
    if not 1 <= categories <= MAX_CATEGORIES:
        raise InputError(f"--categories: from 1 to {MAX_CATEGORIES} (got {categories})")
    catalog = []
    notes = []
    for key in names:
        provider = key.split("/", 1)[0] if "/" in key else "unknown"
        m = Model(name=key.split("/", 1)[1] if "/" in key else key, provider=provider, litellm_model=key)
        _fill_from_map(m, price_map, label, set())
        if m.guessed:
            near = _near(key, price_map)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            notes.append(f"{key}: not in {label}: prices are 0 until you fill them in{hint}")
        if m.provider != "unknown" and m.litellm_model and "/" not in m.litellm_model:
            m.litellm_model = f"{m.provider}/{m.litellm_model}"
        catalog.append(m)
    if len({m.name for m in catalog}) != len(catalog):
        raise InputError("--models: two models end up with the same name; give each once")
    cats = [f"category-{i + 1}" for i in range(categories)]
    by_price = sorted(catalog, key=lambda m: (m.price_in + m.price_out, m.name))
    lines = _header(
        "Starter worksheet written by `routecalc init`.",
        [
            f"Prices and context windows: {label} (USD per 1M tokens)."
            if price_map is not None
            else "No price map was found: prices are 0 (install routecalc[litellm] or give --from FILE)."
        ],
    )
    lines += [
        "name: Starter worksheet   # GUESS: name it",
        "currency: USD",
        "price_unit: per_1m",
        "volume:",
        f"  requests_per_month: 1000000   # {GUESS}: your monthly volume",
        "defaults:",
        "  retries: 1",
        "",
        "models:",
    ]
    for m in catalog:
        lines += _model_lines(m)
    lines += ["", *_task_lines(cats, catalog), "", "policies:"]
    for m in catalog:
        lines += [f"  - name: {_q('all-' + m.name)}", "    kind: static", "    routes:"]
        lines += [f"      {_q(c)}: {_q(m.name)}" for c in cats]
    if len(catalog) > 1:
        chain = _flow([m.name for m in by_price])
        lines += [
            "  - name: cheap-first",
            "    kind: cascade",
            "    description: the cheapest model first; a rejected answer goes to the next dearer one",
            "    routes:",
        ]
        lines += [f"      {_q(c)}: {chain}" for c in cats]
    lines.append(f"baseline: {_q('all-' + by_price[-1].name)}   # {GUESS}: the policy you run today")
    text = "\n".join(lines) + "\n"
    return Starter(_checked(text, "starter worksheet"), notes)


# ---------------------------------------------------------------------------------------------------------
# From a LiteLLM proxy config


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping")
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _fallbacks(settings: dict[str, Any], where: str) -> dict[str, list[str]]:
    """``fallbacks: [{group: [a, b]}, ...]`` as a dict."""
    out: dict[str, list[str]] = {}
    raw = settings.get("fallbacks") or []
    if not isinstance(raw, list):
        raise InputError(f"{where}.fallbacks: expected a list of {{group: [fallback, ...]}}")
    for item in raw:
        if not isinstance(item, dict):
            raise InputError(f"{where}.fallbacks: expected a list of {{group: [fallback, ...]}}")
        for k, v in item.items():
            targets = v if isinstance(v, list) else [v]
            out.setdefault(str(k), []).extend(str(t) for t in targets)
    return out


def from_litellm(
    config_text: str, source: str, price_map: dict[str, dict[str, Any]] | None = None, label: str = "price map"
) -> Starter:
    """A worksheet from a LiteLLM proxy ``config.yaml`` (module docstring): the catalog and a ``today`` policy."""
    data = parse_yaml(config_text, source)
    data = _mapping(data, source)
    deployments = data.get("model_list")
    if not isinstance(deployments, list) or not deployments:
        raise InputError(f"{source}: no model_list: not a LiteLLM proxy config")
    router = _mapping(data.get("router_settings"), "router_settings")
    lsettings = _mapping(data.get("litellm_settings"), "litellm_settings")
    notes: list[str] = []
    catalog: dict[str, Model] = {}
    groups: dict[str, list[str]] = {}
    step_retries: dict[str, int] = {}  # a deployment's own num_retries, by catalog name
    signature: dict[str, tuple] = {}
    default_timeout = _number(router.get("timeout")) or _number(lsettings.get("request_timeout"))
    for i, dep in enumerate(deployments):
        where = f"model_list[{i}]"
        dep = _mapping(dep, where)
        group = dep.get("model_name")
        params = _mapping(dep.get("litellm_params"), f"{where}.litellm_params")
        info = _mapping(dep.get("model_info"), f"{where}.model_info")
        model = params.get("model")
        if not isinstance(group, str) or not isinstance(model, str):
            raise InputError(f"{where}: needs model_name and litellm_params.model")
        name = info.get("routecalc_model") if isinstance(info.get("routecalc_model"), str) else None
        name = name or (model.split("/", 1)[1] if "/" in model else model)
        prices = {fld: _number(params.get(MAP_FIELD[fld])) for fld in ("price_in", "price_out", "price_cache")}
        sig = (
            model,
            prices["price_in"],
            prices["price_out"],
            prices["price_cache"],
            _number(params.get("timeout")),
            params.get("rpm"),
            params.get("tpm"),
            params.get("api_base"),
            info.get("max_input_tokens"),
        )
        base, k = name, 2
        while name in signature and signature[name] != sig:
            name, k = f"{base}-{k}", k + 1
        if name not in signature:
            signature[name] = sig
            m = Model(name=name, provider=model.split("/", 1)[0] if "/" in model else "unknown", litellm_model=model)
            known = set()
            for fld, value in prices.items():
                if value is not None:
                    setattr(m, fld, per_unit(value, 1e6))
                    known.add(fld)
            window = info.get("max_input_tokens")
            if isinstance(window, int) and not isinstance(window, bool) and window > 0:
                m.context_window = window
                known.add("context_window")
            _fill_from_map(m, price_map, label, known)
            if known >= {"price_in", "price_out"}:
                m.source = "prices from the config"
            elif known & {"price_in", "price_out"} and m.source:
                m.source = (
                    f"{' and '.join(sorted(known & {'price_in', 'price_out'}))} from the config; other {m.source}"
                )
            timeout = _number(params.get("timeout")) or default_timeout
            m.timeout_s = timeout if timeout and timeout > 0 else None
            for fld in ("rpm", "tpm"):
                v = params.get(fld)
                if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                    setattr(m, fld, v)
            if m.guessed:
                notes.append(f"{name} ({model}): no price in the config and not in {label}: prices are 0")
            catalog[name] = m
            own = params.get("num_retries")  # routecalc's export writes a step's own retries here
            if isinstance(own, int) and not isinstance(own, bool) and 0 <= own <= 10:
                step_retries[name] = own
            elif own is not None:
                notes.append(f"{where}.litellm_params.num_retries {own!r} is not a whole number 0 to 10: ignored")
        groups.setdefault(group, []).append(name)
    for g, members in groups.items():
        if len(members) > 1:
            notes.append(
                f"group {g} load-balances {len(members)} deployments ({', '.join(members)}); the worksheet routes "
                f"to the first, {members[0]} (add a split route to model the others)"
            )
    fallbacks = _fallbacks(router, "router_settings")
    for k, v in _fallbacks(lsettings, "litellm_settings").items():
        fallbacks.setdefault(k, v)
    aliases = {str(k): str(v) for k, v in _mapping(router.get("model_group_alias"), "model_group_alias").items()}
    targets = {t for ts in fallbacks.values() for t in ts} | set(aliases.values())
    entries = list(aliases) + [g for g in groups if g not in targets and g not in aliases]
    if not entries:
        raise InputError(f"{source}: every group is a fallback or alias target: no entry point to route")
    routes: dict[str, list[str]] = {}
    for e in entries:
        g = aliases.get(e, e)
        if g not in groups:
            raise InputError(f"{source}: model_group_alias {e} -> {g}: no such model_name in model_list")
        chain = [g, *fallbacks.get(e, fallbacks.get(g, []))]
        missing = [x for x in chain if x not in groups]
        if missing:
            raise InputError(f"{source}: fallbacks of {e} name {', '.join(missing)}: no such model_name in model_list")
        models = list(dict.fromkeys(groups[x][0] for x in chain))
        category = e[len(ROUTE_PREFIX) :] if e.startswith(ROUTE_PREFIX) and len(e) > len(ROUTE_PREFIX) else e
        if category in routes:
            raise InputError(f"{source}: two entry points give the category {category!r}")
        routes[category] = models
    if router.get("context_window_fallbacks"):
        notes.append("context_window_fallbacks are not carried over: give on_overflow steps in the worksheet")
    given = router.get("num_retries", lsettings.get("num_retries"))
    if isinstance(given, int) and not isinstance(given, bool) and 0 <= given <= 10:
        retries, retries_note = given, "router_settings.num_retries"
    else:  # not set (or unusable): what the LiteLLM Router then does
        retries, retries_note = LITELLM_DEFAULT_RETRIES, "LiteLLM's default (the config sets no num_retries)"
        if given is not None:
            notes.append(f"num_retries {given!r} is not a whole number 0 to 10: LiteLLM's default assumed")
    used = list(dict.fromkeys(n for chain in routes.values() for n in chain))
    models_used = [catalog[n] for n in used]
    unused = [n for n in catalog if n not in used]
    if unused:
        notes.append(f"not on any route (left out): {', '.join(unused)}")
    lines = _header(
        f"Worksheet written by `routecalc init --from-litellm {source}`.",
        [
            "The catalog (models, prices, context windows, rpm/tpm, timeouts, retries) and the `today` policy (each",
            f"entry point's group followed by its fallbacks) are the config's; prices missing there come from {label}.",
        ],
    )
    lines += [
        f"name: {_q('Today (' + source.rsplit('/', 1)[-1] + ')')}   # GUESS: name it",
        "currency: USD",
        "price_unit: per_1m",
        "volume:",
        f"  requests_per_month: 1000000   # {GUESS}: your monthly volume",
        "defaults:",
        f"  retries: {retries}   # {retries_note}",
    ]
    for fld, key in (("allowed_fails", "allowed_fails"), ("cooldown_s", "cooldown_time")):
        v = router.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0:
            lines.append(f"  {fld}: {_num(v)}   # router_settings.{key}")
    lines += ["", "models:"]
    for m in models_used:
        lines += _model_lines(m)
    lines += ["", *_task_lines(list(routes), models_used), "", "policies:"]
    lines += [
        "  - name: today",
        "    kind: fallback",
        "    description: what the LiteLLM proxy runs now (from its config)",
        "    routes:",
    ]
    step = lambda n: {"model": n, "retries": step_retries[n]} if step_retries.get(n, retries) != retries else n
    lines += [f"      {_q(c)}: {_flow([step(n) for n in chain])}" for c, chain in routes.items()]
    lines.append("baseline: today")
    text = "\n".join(lines) + "\n"
    return Starter(_checked(text, f"worksheet from {source}"), notes)
