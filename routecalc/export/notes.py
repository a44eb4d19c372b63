"""What a router cannot do by itself, in sentences: the application's part of a compiled policy.

Router-independent: tool steps, hedges, quality gates and the steps only a reject reaches, failure targets that
are not the next step, deadlines that go elsewhere than a timeout would, per-step latency targets. The targets add
their own (how the application picks a lane, which error types they can tell apart).
"""

from __future__ import annotations

from routecalc.export.plan import DELIVER, CategoryPlan, ExportPlan, LanePlan, StepPlan


def where(c: CategoryPlan, lane: LanePlan) -> str:
    """``refund`` or ``refund [simple]``: a lane as the notes name it."""
    return c.name + (f" [{lane.where}]" if lane.where else "")


def step_name(st: StepPlan) -> str:
    return f"step {st.index + 1} ({st.label})"


def path_text(lane: LanePlan, path: list[int]) -> str:
    return " -> ".join(str(lane.steps[s].model) for s in path) or "nothing"


def _lane_notes(c: CategoryPlan, lane: LanePlan, router: str) -> list[str]:
    out = []
    name = where(c, lane)
    entry = lane.entry
    path = lane.failure_path()
    for st in lane.steps:
        if st.tool is not None:
            if entry is not None and st.index < entry:
                out.append(
                    f"{name}: {step_name(st)} runs before any model; {router} cannot call a tool: the application "
                    f"calls {st.tool} first and sends the request on only when it misses (or fails)"
                )
            else:
                out.append(
                    f"{name}: {step_name(st)} is a tool step inside the chain; {router} stops before it: the "
                    "application must call the tool and continue the chain itself"
                )
            continue
        if st.hedge is not None:
            out.append(
                f"{name}: {step_name(st)} sends every request to both models at once; {router} sends a request to "
                f"one model: the application must call both and keep the first answer (exported: {st.model} alone)"
            )
        default = st.on_failure["5xx"]
        if st.index in path and st.index != len(lane.steps) - 1 and default == "fail":
            out.append(
                f"{name}: {step_name(st)} fails the request on provider failure; {router} only falls back along "
                f"the failure path {path_text(lane, path)}"
            )
        elif isinstance(default, int) and default != st.index + 1 and st.index in path:
            out.append(
                f"{name}: {step_name(st)} skips to step {default + 1} on failure; exported as the failure path "
                f"{path_text(lane, path)}"
            )
        if st.deadline_s is not None and st.on_deadline != st.on_failure["timeout"]:
            out.append(
                f"{name}: {step_name(st)} moves to {_target_text(lane, st.on_deadline)} at its {st.deadline_s:g} s "
                f"deadline but to {_target_text(lane, st.on_failure['timeout'])} on a provider timeout; {router} "
                "sees both as one timeout"
            )
        if st.latency_target_s is not None:
            out.append(
                f"{name}: {step_name(st)} has a P95 target of {st.latency_target_s:g} s: a check for your "
                f"dashboards, not something {router} enforces"
            )
    for s in lane.reject_only_steps():
        out.append(
            f"{name}: step {s + 1} ({lane.steps[s].label}) runs only when a gate rejects; {router} never sends "
            "traffic there on its own: the application must call it"
        )
    return out


def _target_text(lane: LanePlan, t: object) -> str:
    return f"step {t + 1} ({lane.steps[t].label})" if isinstance(t, int) else str(t)


def step_notes(plan: ExportPlan, router: str) -> list[str]:
    """Sentences for every step-level part of the policy ``router`` cannot do by itself."""
    out = []
    for c in plan.categories:
        for lane in c.lanes:
            out += _lane_notes(c, lane, router)
    if plan.gated and plan.final_reject != DELIVER:
        out.append(
            f"final_reject is {plan.final_reject!r}: a last-step gate reject must be handled by the application "
            f"({router} delivers whatever the last model answers)"
        )
    return out


def no_fallback(plan: ExportPlan) -> list[str]:
    """Lanes whose router path is one model: a provider failure there fails the request."""
    out = []
    for c in plan.categories:
        for lane in c.lanes:
            steps = lane.router_steps()
            if len(steps) == 1:
                out.append(f"{where(c, lane)}: {lane.steps[steps[0]].model}")
    return out
