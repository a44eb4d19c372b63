"""Portkey gateway config (``x-portkey-config`` JSON) from an export plan.

A conditional router on ``metadata.category`` picks one named target per category; each is a ``fallback``
group over the category's failure path, with the worksheet's ``on_status_codes``, per-leg ``retry``,
``request_timeout`` and ``override_params.model``. Keys are ``${PROVIDER_API_KEY}`` placeholders, never literals.
"""

from __future__ import annotations

import json
from typing import Any

from routecalc.errors import ExportError
from routecalc.export.plan import ExportPlan, ModelPlan, check_chain_length, inexpressible

# Provider ids the gateway 1.15.2 config schema accepts (zod enum in build/start-server.js).
PORTKEY_PROVIDERS = frozenset(
    [
        "anthropic",
        "anyscale",
        "azure-openai",
        "cohere",
        "google",
        "vertex-ai",
        "mistral-ai",
        "openai",
        "palm",
        "perplexity-ai",
        "reka-ai",
        "together-ai",
        "deepinfra",
        "ncompass",
        "stability-ai",
        "nomic",
        "ollama",
        "ai21",
        "bedrock",
        "groq",
        "segmind",
        "jina",
        "fireworks-ai",
        "workers-ai",
        "moonshot",
        "openrouter",
        "lingyi",
        "zhipu",
        "novita-ai",
        "monsterapi",
        "deepseek",
        "predibase",
        "triton",
        "voyage",
        "azure-ai",
        "github",
        "deepbricks",
        "siliconflow",
        "huggingface",
        "cerebras",
        "inference-net",
        "sambanova",
        "lemonfox-ai",
        "upstage",
        "lambda",
        "dashscope",
        "x-ai",
        "cortex",
        "sagemaker",
        "nebius",
        "recraft-ai",
        "milvus",
        "replicate",
        "portkey",
        "lepton",
        "kluster-ai",
        "nscale",
        "hyperbolic",
        "bytez",
        "featherless-ai",
        "krutrim",
        "qdrant",
        "302ai",
        "cometapi",
        "matterai",
        "meshy",
        "tripo3d",
        "nextbit",
        "modal",
        "z-ai",
        "oracle",
        "iointelligence",
        "aibadgr",
        "ovhcloud",
    ]
)
# LiteLLM-style / common spellings -> Portkey provider id.
_ALIASES = {
    "azure": "azure-openai",
    "gemini": "google",
    "vertex": "vertex-ai",
    "mistral": "mistral-ai",
    "perplexity": "perplexity-ai",
    "together": "together-ai",
    "fireworks": "fireworks-ai",
    "xai": "x-ai",
    "cloudflare": "workers-ai",
    "zai": "z-ai",
}
_NEEDS_MORE = {"bedrock", "sagemaker", "vertex-ai", "azure-openai", "azure-ai"}


def portkey_provider(provider: str) -> str:
    """Worksheet provider -> Portkey provider id; ExportError if the gateway has none."""
    p = provider.lower().replace("_", "-")
    p = _ALIASES.get(p, _ALIASES.get(p.replace("-", ""), p))
    if p not in PORTKEY_PROVIDERS:
        raise ExportError(f"provider {provider!r} has no Portkey gateway provider id (e.g. openai, anthropic, google)")
    return p


def _leg(plan: ExportPlan, m: ModelPlan, retries: int) -> dict[str, Any]:
    leg: dict[str, Any] = {
        "provider": portkey_provider(m.provider),
        "api_key": "${" + m.api_key_env + "}",
        "override_params": {"model": m.bare_model},
        "request_timeout": round(m.timeout_s * 1000),
    }
    if retries > 0:
        leg["retry"] = {"attempts": retries, "on_status_codes": list(plan.on_status_codes)}
    return leg


def default_category(plan: ExportPlan) -> str:
    """Where a request without (or with an unknown) ``metadata.category`` goes: the largest-traffic category."""
    return max(plan.categories, key=lambda c: c.traffic_share).alias


def build_config(plan: ExportPlan) -> dict[str, Any]:
    """The gateway config dict."""
    targets = []
    conditions = []
    for c in plan.categories:
        path = c.failure_path()
        check_chain_length(f"{c.name} fallback targets", len(path))
        legs = [_leg(plan, plan.model(c.steps[s].model), c.steps[s].retries) for s in path]
        targets.append(
            {
                "name": c.alias,
                "strategy": {"mode": "fallback", "on_status_codes": list(plan.on_status_codes)},
                "targets": legs,
            }
        )
        conditions.append({"query": {"metadata.category": {"$eq": c.name}}, "then": c.alias})
    return {
        "strategy": {"mode": "conditional", "conditions": conditions, "default": default_category(plan)},
        "targets": targets,
    }


def validate(config: dict[str, Any]) -> None:
    """Target names unique and every ``then``/``default`` names one (the gateway checks only when taken)."""
    names = [t.get("name") for t in config.get("targets", [])]
    if len(set(names)) != len(names):
        raise ExportError(f"portkey: duplicate target names in {names}")
    strategy = config.get("strategy", {})
    wanted = [c["then"] for c in strategy.get("conditions", [])]
    if "default" in strategy:
        wanted.append(strategy["default"])
    for w in wanted:
        if w not in names:
            raise ExportError(f"portkey: conditional router names unknown target {w!r}")
    for t in config.get("targets", []):
        check_chain_length(f"portkey target {t.get('name')}", len(t.get("targets", [])))


def render(plan: ExportPlan) -> tuple[str, dict[str, Any], list[str]]:
    """JSON text, the config dict and the warnings; re-loads the text to check it."""
    config = build_config(plan)
    validate(config)
    warnings = list(plan.warnings) + inexpressible(plan, "Portkey")
    warnings.append(
        "api_key values are ${VAR} placeholders: the gateway does not read environment variables, so substitute "
        "them (e.g. envsubst) where the config is attached to requests; never commit real keys"
    )
    warnings.append(
        f"requests without metadata.category (or with an unknown one) go to {default_category(plan)} "
        "(the category with the most traffic)"
    )
    if plan.gated:
        warnings.append("quality gates are not enforced by Portkey: see the json export; the application must run them")
    if 408 not in plan.on_status_codes:
        warnings.append(
            "Portkey answers a request_timeout with HTTP 408, which is not in defaults.on_status_codes: "
            "timeouts will not fall back (add 408 to fall back on them)"
        )
    for p in sorted({portkey_provider(m.provider) for m in plan.models.values()} & _NEEDS_MORE):
        warnings.append(f"provider {p} needs more than an api_key (region/resource/credentials): add them by hand")
    text = json.dumps(config, indent=2) + "\n"
    if json.loads(text) != config:
        raise ExportError("the Portkey config does not re-load to what was written")
    validate(json.loads(text))
    return text, config, warnings
