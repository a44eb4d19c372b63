"""Validation every export target runs on its fallback graph before anything is written."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from routecalc.errors import ExportError
from routecalc.worksheet import MAX_CHAIN


def check_fallbacks(
    groups: Collection[str],
    fallbacks: Mapping[str, Sequence[str]],
    max_chain: int = MAX_CHAIN,
    what: str = "fallbacks",
) -> int:
    """Refuse a fallback mapping a router would mis-handle; return the most groups one request can try.

    Every key and target must be an existing group, the graph must be acyclic (a fallback loop retries forever
    in production), and no request may try more than ``max_chain`` groups. A router walks fallbacks
    transitively and in list order, so a group's tries are itself plus every try of each of its targets.
    """
    known = set(groups)
    for src, targets in fallbacks.items():
        if src not in known:
            raise ExportError(f"{what}: {src!r} is not a model group (groups: {', '.join(sorted(known))})")
        for t in targets:
            if t not in known:
                raise ExportError(f"{what}: {src!r} falls back to unknown group {t!r}")
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    tries: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> int:
        if state.get(node) == 2:
            return tries[node]
        if state.get(node) == 1:
            cycle = [*stack[stack.index(node) :], node]
            raise ExportError(f"{what}: fallback cycle {' -> '.join(cycle)} (a request would loop)")
        state[node] = 1
        stack.append(node)
        total = 1 + sum(visit(t, stack) for t in fallbacks.get(node, ()))
        stack.pop()
        state[node] = 2
        tries[node] = total
        return total

    longest = 0
    for g in sorted(known):
        n = visit(g, [])
        if n > max_chain:
            raise ExportError(
                f"{what}: a request to {g!r} could try {n} groups; at most {max_chain} "
                "(long fallback chains multiply latency and cost when a provider is down)"
            )
        longest = max(longest, n)
    return longest


def check_chain_length(name: str, length: int, max_chain: int = MAX_CHAIN) -> None:
    """Refuse an explicit target list longer than ``max_chain``."""
    if length > max_chain:
        raise ExportError(f"{name}: chain of {length} targets; at most {max_chain}")
