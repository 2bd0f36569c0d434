"""The report's charts as SVG documents, drawn by matplotlib's SVG backend (no display, no network).

Each function returns one standalone SVG document (text drawn as paths, so no font is needed to view it;
fixed hash salt and no date, so the same figures give the same bytes). The HTML report embeds them as
``data:`` images, so the report stays one self-contained file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from services.audit.replay.funnel import FunnelRow

STAGE_COLOURS = {"offered": "#8fa8c8", "accepted": "#3b6ea5", "completed": "#1d3d63"}
BAR_COLOUR = "#3b6ea5"


def funnel_chart(rows: Sequence[FunnelRow], title: str) -> str:
    """Grouped horizontal bars: needs offered / accepted / completed for each row's label."""
    from matplotlib.figure import Figure  # noqa: PLC0415 (slow import, only when a report is drawn)
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    labels = [row.label.replace("_", " ") for row in rows] or ["(no offers)"]
    height = max(2.2, 0.55 * len(labels) + 1.2)
    figure = Figure(figsize=(7.5, height), layout="constrained")
    axes = figure.add_subplot()
    bar = 0.26
    for index, stage in enumerate(("offered", "accepted", "completed")):
        values = [getattr(row, stage) for row in rows] or [0]
        positions = [number + (index - 1) * bar for number in range(len(labels))]
        bars = axes.barh(positions, values, height=bar, color=STAGE_COLOURS[stage], label=stage)
        axes.bar_label(bars, padding=2, fontsize=8)
    axes.set_yticks(range(len(labels)), labels=labels)
    axes.invert_yaxis()
    axes.set_xlabel("needs")
    axes.set_title(title, fontsize=11, loc="left")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(loc="lower right", fontsize=8, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def acceptance_histogram(seconds: Sequence[float]) -> str:
    """The distribution of the time from first offer to acceptance, in the unit that suits its range."""
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    unit, scale = time_unit(max(seconds, default=0.0))
    values = [value / scale for value in seconds]
    figure = Figure(figsize=(7.5, 3.0), layout="constrained")
    axes = figure.add_subplot()
    if values:
        axes.hist(values, bins=min(30, max(5, len(values))), color=BAR_COLOUR, edgecolor="white")
    else:
        axes.text(0.5, 0.5, "no accepted needs", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel(f"time from first offer to acceptance ({unit})")
    axes.set_ylabel("needs")
    axes.set_title("Time to acceptance", fontsize=11, loc="left")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def time_unit(largest_seconds: float) -> tuple[str, float]:
    """``(unit name, seconds per unit)``: seconds up to 2 minutes, minutes up to 2 hours, hours up to 2 days, days."""
    for unit, scale, limit in (("seconds", 1.0, 120), ("minutes", 60.0, 7200), ("hours", 3600.0, 172_800)):
        if largest_seconds <= limit:
            return unit, scale
    return "days", 86_400.0


def _svg(figure: Figure) -> str:
    import matplotlib as mpl  # noqa: PLC0415

    buffer = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": "referralnet-audit", "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # no XML prolog or DOCTYPE: nothing that names an outside resource
