"""Portkey gateway provider ids and how each is authenticated (gateway 1.15.2, build/start-server.js)."""

from __future__ import annotations

from routecalc.errors import ExportError

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
# The request header carrying each provider's key, which a leg forwards to the provider (``forward_headers``):
# the gateway writes the provider's auth header from the leg's api_key, then lays forwarded headers over it.
AUTH_HEADER = {"anthropic": "x-api-key", "azure-openai": "api-key"}
DEFAULT_AUTH_HEADER = "authorization"  # OpenAI and the OpenAI-compatible providers: Authorization: Bearer <key>


def portkey_provider(provider: str) -> str:
    """Worksheet provider -> Portkey provider id; ExportError if the gateway has none."""
    p = provider.lower().replace("_", "-")
    p = _ALIASES.get(p, _ALIASES.get(p.replace("-", ""), p))
    if p not in PORTKEY_PROVIDERS:
        raise ExportError(f"provider {provider!r} has no Portkey gateway provider id (e.g. openai, anthropic, google)")
    return p


def auth_header(provider_id: str) -> str:
    """The request header a leg of this provider forwards as its key."""
    return AUTH_HEADER.get(provider_id, DEFAULT_AUTH_HEADER)
