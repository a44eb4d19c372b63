"""Rules for the text a worksheet holds: names, free text, LiteLLM model ids, and what looks like a secret.

Names (worksheet, model, provider, category, policy, and every reference to one) end up in terminals, charts,
HTML, CSV cells, YAML comments and router configs. A control character there can rewrite a terminal (ESC), break
a YAML comment into live config (CR, U+2028), or hide what a name says (bidirectional overrides), so names may
not contain any: C0 (U+0000-U+001F), DEL, C1 (U+0080-U+009F), U+2028/U+2029, and the bidirectional embedding,
override and isolate controls (U+202A-U+202E, U+2066-U+2069). Free text (descriptions) may also hold newlines
and tabs. Everything else (``$``, ``[bold]``, ``:smile:``, ``=cmd``) is allowed, and is rendered literally.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Annotated

from pydantic import AfterValidator, Field

from routecalc.limits import MAX_NAME_CHARS

MAX_TEXT_CHARS = 10_000  # a description
_BIDI = "\u202a-\u202e\u2066-\u2069"
_FORBIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
_FORBIDDEN_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")  # newline and tab allowed
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+$"  # the same, for editors
ENV_PREFIX = "os.environ/"


def forbidden_char(text: str, allow_newlines: bool = False) -> str | None:
    """A sentence naming the first control character in ``text`` and where it is, or None."""
    m = (_FORBIDDEN_IN_TEXT if allow_newlines else _FORBIDDEN).search(text)
    if m is None:
        return None
    return f"contains the control character U+{ord(m.group()):04X} at position {m.start() + 1}"


def _name(value: str) -> str:
    if value.isprintable():  # every forbidden character is non-printable (Cc, Cf, Zl, Zp): the common case, fast
        return value
    problem = forbidden_char(value)
    if problem:
        raise ValueError(f"{problem}; names are shown in terminals, charts and router configs: use printable text")
    return value


def _text(value: str) -> str:
    problem = forbidden_char(value, allow_newlines=True)
    if problem:
        raise ValueError(f"{problem} (text may hold newlines and tabs, no other control characters)")
    return value


def _litellm_model(value: str) -> str:
    if value.strip().lower().startswith(ENV_PREFIX):
        raise ValueError(
            f"{value[:40]!r}: LiteLLM reads '{ENV_PREFIX}...' as an environment variable, so the export would call "
            "whatever model that variable names; give the model id itself (e.g. openai/gpt-4.1)"
        )
    return value


Name = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NAME_CHARS, json_schema_extra={"pattern": NAME_PATTERN}),
    AfterValidator(_name),
]
FreeText = Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_text)]
LiteLLMModel = Annotated[Name, AfterValidator(_litellm_model)]


# ---------------------------------------------------------------------------------------------------------
# Secrets pasted into a worksheet

_KEY_PREFIXES = re.compile(
    r"(?<![A-Za-z0-9])("
    r"sk-[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic (sk-ant-...), DeepSeek, ...
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|AIza[0-9A-Za-z_-]{30,}"  # Google API key
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|gsk_[A-Za-z0-9]{30,}"  # Groq
    r")"
)
_TOKEN = re.compile(r"[A-Za-z0-9_+/=-]{32,}")
_SEPARATORS = re.compile(r"[/_+=-]")
MIN_UNBROKEN = 16  # a key has a long unbroken run; model ids are short words joined by / - _
ENTROPY_BITS = 4.0  # bits per character: hex digests reach at most 4.0, random base64 keys about 5-6


def _entropy(token: str) -> float:
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in Counter(token).values())


def secret_like(text: str) -> str | None:
    """The start of a substring of ``text`` that looks like an API key or token (shown cut short), or None.

    Known key prefixes (``sk-``, ``AKIA``, ``AIza``, ``ghp_``, ...) always count; any other run of 32+ letters,
    digits and ``_+/=-`` counts when it mixes upper case, lower case and digits with more than 4.0 bits of entropy
    per character and has an unbroken stretch (between ``/ _ - + =``) of at least 16 characters (so a SHA-256 in
    hex, a UUID or a model id such as ``anthropic/claude-sonnet-4-20250514`` or
    ``together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1`` does not).
    """
    m = _KEY_PREFIXES.search(text)
    if m:
        return m.group()[:6] + "..."
    for m in _TOKEN.finditer(text):
        tok = m.group()
        mixed = all(re.search(cls, tok) for cls in ("[a-z]", "[A-Z]", "[0-9]"))
        words = max(len(w) for w in _SEPARATORS.split(tok)) < MIN_UNBROKEN  # a path of names, not a key
        if mixed and not words and _entropy(tok) > ENTROPY_BITS:
            return tok[:6] + "..."
    return None
