"""Shared by every chart: palette and styling, figure scaffolding, rendering, and two lookups into a Comparison.

Rendering (:func:`render_figure`) lays a figure out and draws it once for PNG, then freezes that layout so the
SVG is only rendered, not laid out again; :func:`chart_rc` makes user text literal (no math text, no TeX: a
policy named "Tier $ vs $$" is a name, not an equation) and output deterministic. matplotlib is imported only
inside functions, so importing the charts (and ``routecalc --help``) stays fast.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np

from routecalc.format import count, money
from routecalc.results import Comparison

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe-Ito colour-blind-safe palette (yellow last: weak on white), plus markers and hatches for greyscale.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
LINE_COLOURS = OKABE_ITO[:7]  # 7 colours x 8 markers / line styles: unique up to 56 policies
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 1)), (0, (3, 1, 1, 1)))
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++", "**", "||")
STATUS_COLOURS = {"ok": "#BFE6D8", "tight": "#F5CF7A", "miss": "#D55E00", "none": "#EEEEEE"}  # tints of Okabe-Ito
GREY = "#555555"
HUMAN = "human review"
FAILED = "failed (no answer)"
VALIDATOR = "validator"
DPI = 150

ChartFormat = Literal["png", "svg"]
F = TypeVar("F", bound=Callable[..., "Figure"])


def chain_index(c: Comparison, name: str) -> int:
    return c.problem.chains.names.index(name)


def focus_policy(c: Comparison) -> str:
    """The policy the per-category view describes: the winner, else the baseline, else the first policy."""
    return c.winner or c.baseline or c.policies[0].name


# ---------------------------------------------------------------------------------------------------------
# Rendering


@contextmanager
def chart_rc() -> Iterator[None]:
    """rcParams for building and rendering every chart: names are text, never math text or TeX (matplotlib
    parses ``$...$`` in any label, and a name with two ``$`` raised a parse error), fixed SVG ids, one font."""
    import matplotlib

    with matplotlib.rc_context(
        {
            "text.parse_math": False,
            "text.usetex": False,
            "svg.hashsalt": "routecalc",
            "svg.fonttype": "path",
            "font.family": "DejaVu Sans",
        }
    ):
        yield


def with_chart_rc(draw: F) -> F:
    """Build a figure under :func:`chart_rc` (text objects read ``text.parse_math`` when they are created)."""

    @functools.wraps(draw)
    def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
        with chart_rc():
            return draw(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def render_figure(fig: Figure, formats: Sequence[ChartFormat] = ("png", "svg"), dpi: int = DPI) -> dict[str, bytes]:
    """The figure as PNG and/or SVG bytes, laid out once: no dates in the metadata, fixed SVG ids.

    PNG: one Agg draw (the constrained layout runs inside it), saved from the canvas buffer. Then the layout is
    frozen (no layout engine), so the SVG is one more render of the same positions, not a second layout. A
    ``savefig`` per format costs 2 layouts and 4 draws per chart (each savefig draws a pre-pass, then renders).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imsave

    out: dict[str, bytes] = {}
    with chart_rc():
        canvas = FigureCanvasAgg(fig)
        if "png" in formats:
            fig.set_dpi(dpi)
            canvas.draw()
            buf = io.BytesIO()
            imsave(buf, canvas.buffer_rgba(), format="png", dpi=dpi, metadata={"Software": None})
            out["png"] = buf.getvalue()
            fig.set_layout_engine(None)  # positions stay as laid out above
        if "svg" in formats:
            buf = io.BytesIO()
            fig.savefig(buf, format="svg", dpi=dpi, metadata={"Date": None}, facecolor="white")
            out["svg"] = buf.getvalue()
    return out


def figure_bytes(fig: Figure, fmt: ChartFormat = "png", dpi: int = DPI) -> bytes:
    """One format of :func:`render_figure` (PNG or SVG bytes)."""
    return render_figure(fig, (fmt,), dpi)[fmt]


# ---------------------------------------------------------------------------------------------------------
# Figures and axes


def _subtitle(c: Comparison) -> str:
    return (
        f"{c.worksheet} · {count(c.requests_per_month)} requests/month · money in {c.currency} · "
        f"Monte Carlo: {count(c.samples)} requests, seed {c.seed} · routecalc"
    )


def new_figure(c: Comparison, title: str, size: tuple[float, float]) -> Figure:
    """A blank figure with the worksheet name in the title and volume and currency in a footer."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained", facecolor="white")
    fig.suptitle(f"{title} — {c.worksheet}", fontsize=13, fontweight="bold", x=0.01, ha="left")
    fig.supxlabel(_subtitle(c), fontsize=8.5, color=GREY, x=0.01, ha="left")
    return fig


def legend_below(ax: Axes, points: float = 40) -> dict:
    """Legend placement under an axes' tick labels and x label, a fixed distance whatever the figure height."""
    from matplotlib.transforms import offset_copy

    return {
        "loc": "upper center",
        "bbox_to_anchor": (0.5, 0.0),
        "bbox_transform": offset_copy(ax.transAxes, fig=ax.figure, y=-points, units="points"),
    }


def style_axes(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=9)
    ax.grid(True, color="#E5E5E5", linewidth=0.8)
    ax.set_axisbelow(True)


def money_axis(ax: Axes, currency: str, axis: str = "x") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: "0" if v == 0 else money(v, currency))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def policy_styles(c: Comparison) -> dict[str, tuple[str, str, object]]:
    """Colour, marker and line style per policy, the same in every chart."""
    return {
        p.name: (LINE_COLOURS[i % len(LINE_COLOURS)], MARKERS[i % len(MARKERS)], LINESTYLES[i % len(LINESTYLES)])
        for i, p in enumerate(c.policies)
    }


FIXED_SEGMENTS = {HUMAN: ("#999999", ".."), FAILED: ("#333333", "xx"), VALIDATOR: ("#BBBBBB", "//")}


def model_styles(c: Comparison) -> dict[str, tuple[str, str]]:
    """Colour and hatch per model, by catalogue order, so a model looks the same in every chart."""
    styles = {
        m: (OKABE_ITO[i % len(OKABE_ITO)], HATCHES[i % len(HATCHES)]) for i, m in enumerate(c.problem.models.names)
    }
    return {**styles, **FIXED_SEGMENTS}


def category_styles(c: Comparison) -> dict[str, tuple[str, str]]:
    """Colour and hatch per category: samples of cividis (colour-blind-safe), distinct from the model colours."""
    from matplotlib import colormaps

    names = c.problem.tasks.names
    cmap = colormaps["cividis"]
    n = max(len(names) - 1, 1)
    return {
        name: (matplotlib_hex(cmap(0.05 + 0.9 * i / n)), HATCHES[(i + 1) % len(HATCHES)])
        for i, name in enumerate(names)
    }


def matplotlib_hex(rgba: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(v * 255):02X}" for v in rgba[:3])


def stacked_bars(
    ax: Axes, names: Sequence[str], labels: Sequence[str], values: np.ndarray, styles: dict[str, tuple[str, str]]
) -> None:
    y = np.arange(len(names))
    left = np.zeros(len(names))
    for k, label in enumerate(labels):
        colour, hatch = styles[label]
        ax.barh(
            y,
            values[:, k],
            left=left,
            height=0.62,
            color=colour,
            hatch=hatch,
            edgecolor="white",
            linewidth=0.6,
            label=label,
        )
        left += values[:, k]
    ax.set_yticks(y, names)
    ax.set_ylim(len(names) - 0.5, -0.5)
