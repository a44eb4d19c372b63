"""The classifier value curve: a policy's monthly cost and quality as its classifier's accuracy moves from
guessing to perfect (:func:`routecalc.decide.whatif.classifier_values`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from routecalc.report.charts.common import new_figure, with_chart_rc
from routecalc.results import Comparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from routecalc.decide.whatif import ClassifierValue


@with_chart_rc
def classifier_curve_figure(c: Comparison, values: list[ClassifierValue]) -> Figure:
    """Monthly cost and quality against classifier accuracy, one line per (policy, classifier): what each point
    of accuracy is worth. Hollow markers: a category misses its quality threshold at that accuracy."""
    currency = c.currency
    fig = new_figure(c, "Cost and quality vs classifier accuracy", (9, 4.2))
    cost_ax, q_ax = fig.subplots(1, 2)
    for v in values:
        acc = [a * 100 for a in v.curve_accuracy]
        label = f"{v.policy} / {v.classifier}"
        (line,) = cost_ax.plot(acc, v.curve_monthly_cost, label=label)
        q_ax.plot(acc, [q * 100 for q in v.curve_quality], color=line.get_color())
        for ax, ys in ((cost_ax, v.curve_monthly_cost), (q_ax, [q * 100 for q in v.curve_quality])):
            ok = list(v.curve_meets_quality)
            ax.scatter(
                acc,
                ys,
                s=16,
                facecolors=[line.get_color() if k else "none" for k in ok],
                edgecolors=line.get_color(),
            )
        cost_ax.scatter([v.accuracy * 100], [v.monthly_cost], marker="*", s=120, color=line.get_color(), zorder=3)
        q_ax.scatter([v.accuracy * 100], [v.quality * 100], marker="*", s=120, color=line.get_color(), zorder=3)
    cost_ax.set_xlabel("Classifier balanced accuracy (%)")
    cost_ax.set_ylabel(f"Monthly cost ({currency}/month)")
    cost_ax.set_title("Monthly cost (★ = this classifier)")
    q_ax.set_xlabel("Classifier balanced accuracy (%)")
    q_ax.set_ylabel("Quality where it routes (good answers, %)")
    q_ax.set_title("Quality (hollow: a threshold missed)")
    cost_ax.legend(fontsize="small")
    return fig
