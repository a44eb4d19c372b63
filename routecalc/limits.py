"""Input limits, in one place, and the bounded file reader that enforces the size limits.

Every file routecalc reads is somebody's input: it may be huge, endless (``/dev/zero``), a FIFO that never
delivers, or a directory. ``read_bytes`` refuses anything that is not a regular file and anything larger than
its limit, reading at most ``limit + 1`` bytes, so no input can hang or exhaust memory before it is refused.
The README section "Input limits" lists these numbers; change them here and there together.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from routecalc.errors import InputError

MIB = 1024 * 1024
MAX_WORKSHEET_BYTES = 16 * MIB  # a worksheet, a scenario overlay or a CSV task table
MAX_PRICE_MAP_BYTES = 64 * MIB  # LiteLLM's own map is about 3.5 MB
MAX_OWN_FILE_BYTES = 256 * MIB  # files routecalc wrote itself (manifest, hashing an existing output)

MAX_DEPTH = 64  # nesting of YAML/JSON mappings and lists; a worksheet needs about 8
MAX_ALIAS_NODES = 1_000_000  # nodes YAML aliases may add when expanded (a "billion laughs" adds ~10^9)
MAX_INT_DIGITS = 100  # an integer literal longer than this is refused (Python's own str limit is 4,300)
MAX_NAME_CHARS = 200  # names: worksheet, model, category, policy, provider, litellm_model
MAX_NUMBER = 1e15  # no worksheet quantity is larger; keeps every product of a few of them finite
PRICE_WARN_PER_1M = 1_000.0  # worksheet currency per 1M tokens: above this, a warning (a unit typo?)
PRICE_MAX_PER_1M = 1_000_000.0  # worksheet currency per 1M tokens (1 per token): above this, refused
MAX_SEED = 2**63 - 1  # --seed range: 0 .. 2**63 - 1
MIN_SAMPLES = 1_000  # --samples: fewer Monte Carlo requests give no usable P95
MAX_SAMPLES = 2**31 - 1  # --samples: the latency histograms count in 32 bits
REPR_CHARS = 60  # longest repr of a user's value quoted in an error message


def read_bytes(path: str | Path, limit: int, error: type[InputError] = InputError, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is ``error`` (an InputError).

    Opened non-blocking, so a FIFO is refused instead of waiting for a writer; checked with ``fstat`` on the
    open descriptor (no window between check and read); read with a bound, so a file that grows, or a device
    that never ends, costs at most ``limit + 1`` bytes.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except ValueError:  # a NUL byte in the path
        raise error(f"{short_repr(str(path))}: not a usable file name") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise error(f"{path}: {kind}; a {what} must be a regular file")
        if st.st_size > limit:
            raise error(f"{path}: {st.st_size:,} bytes; a {what} may have at most {limit:,} bytes ({limit // MIB} MiB)")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise error(f"{path}: more than {limit:,} bytes; a {what} may have at most {limit // MIB} MiB")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_text(path: str | Path, limit: int, error: type[InputError] = InputError, what: str = "file") -> str:
    """``read_bytes`` decoded as UTF-8; undecodable bytes are ``error`` naming the byte and its line."""
    data = read_bytes(path, limit, error, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); save the {what} as UTF-8"
        ) from None


def parse_samples(text: str, option: str = "--samples") -> int:
    """A Monte Carlo sample count as people write it: ``200000``, ``200_000``, ``200,000``, ``2e5``, ``1e8``.

    It must be a whole number from ``MIN_SAMPLES`` to ``MAX_SAMPLES``; anything else is an InputError saying why.
    """
    raw = str(text).strip()
    clean = raw.replace("_", "").replace(",", "")
    value: int | None = None
    if clean.isdigit() and len(clean) <= 20:
        value = int(clean)
    elif len(clean) <= 20:
        try:
            number = float(clean)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number == int(number):
            value = int(number)
    if value is None:
        raise InputError(f"{option}: not a whole number of requests: {short_repr(raw)} (e.g. 200000, 2e5, 1e8)")
    if value < MIN_SAMPLES:
        raise InputError(f"{option}: at least {MIN_SAMPLES:,} requests (got {value:,})")
    if value > MAX_SAMPLES:
        raise InputError(
            f"{option}: at most {MAX_SAMPLES:,} requests (about 2.1e9: the latency histograms count in 32 bits); "
            f"got {value:,.0f}"
        )
    return value


def short_repr(value: object, limit: int = REPR_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, built lazily: a huge or alias-expanded structure costs only the
    pieces shown, and an integer too long for Python to print is described instead of raising ``ValueError``."""
    out: list[str] = []
    size = 0
    for piece in _pieces(value, limit, 0):
        out.append(piece)
        size += len(piece)
        if size > limit:
            break
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pieces(value: object, limit: int, depth: int):  # type: ignore[no-untyped-def]
    if depth > 8:
        yield "..."
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        yield repr(value)
    elif isinstance(value, int):
        bits = value.bit_length()
        yield repr(value) if bits <= 256 else f"<an integer of about {int(bits * 0.30103) + 1:,} digits>"
    elif isinstance(value, str | bytes):
        yield repr(value[: limit + 1])
    elif isinstance(value, dict):
        yield "{"
        for i, (k, v) in enumerate(value.items()):
            yield ", " if i else ""
            yield from _pieces(k, limit, depth + 1)
            yield ": "
            yield from _pieces(v, limit, depth + 1)
        yield "}"
    elif isinstance(value, list | tuple | set | frozenset):
        yield "[" if isinstance(value, list) else "("
        for i, v in enumerate(value):
            yield ", " if i else ""
            yield from _pieces(v, limit, depth + 1)
        yield "]" if isinstance(value, list) else ")"
    else:
        try:
            yield repr(value)[: limit + 1]
        except Exception:  # a broken __repr__ must not turn an error message into a traceback
            yield f"<{type(value).__name__}>"
