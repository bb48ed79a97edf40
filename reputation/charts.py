"""The score history chart: inline SVG drawn by pygal, as the campaign pages draw theirs."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pygal
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

from reputation.models import ReputationScore

_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    font_family="system-ui, sans-serif",
    colors=("#2f6fed",),
)


def score_chart(history: Sequence[ReputationScore], *, title: str) -> SafeString:
    """A line of the daily scores (0-100); the figures are in the table beside it."""
    chart = pygal.Line(
        width=900, height=220, style=_STYLE, js=[], disable_xml_declaration=True,
        range=(0, 100), show_legend=False, x_label_rotation=0, show_minor_x_labels=False,
        x_labels_major_every=max(1, len(history) // 6), margin=8,
    )  # fmt: skip
    chart.x_labels = [row.day.strftime("%b %d") for row in history]
    chart.add("Score", [row.score for row in history])
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    # pygal's output holds only our numbers and dates; the title is escaped.
    return mark_safe(  # noqa: S308
        svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1)
    )
