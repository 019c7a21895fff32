"""Charts as inline SVG, drawn on the server by pygal: no script, no web font, no CDN.

pygal links its tooltip script from the web by default; `js=[]` keeps the page offline.
"""

from __future__ import annotations

import re
from typing import Any

from bot.core.i18n import N_, Translator
from bot.dashboard._pygal import pygal

STYLE = pygal.style.Style(
    background="transparent",
    plot_background="transparent",
    font_family="system-ui, sans-serif",  # whatever the device has: nothing is downloaded
    colors=("#2f6fdf", "#e08a1e", "#3a9d5d", "#c0392b", "#8e44ad", "#7f8c8d"),
    title_font_size=18,
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    value_font_size=12,
)
CONFIG: dict[str, Any] = {
    "js": [],
    "disable_xml_declaration": True,
    "style": STYLE,
    "width": 640,
    "height": 320,
    "print_values": False,
    "legend_at_bottom": True,
    "truncate_label": -1,  # dates and tier names whole
    "truncate_legend": -1,
}


def _chart(kind: str, title: str, **options: Any) -> Any:
    return getattr(pygal, kind)(title=title, **{"show_legend": True, **CONFIG, **options})


# pygal also writes an inline config script for its (absent) tooltips, and comments with
# its web address: the page runs no script and names no other site.
_SCRIPT = re.compile(r"<script\b.*?</script>|<!--.*?-->", re.S)


def _svg(chart: Any) -> str:
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def checkins_per_day(t: Translator, per_day: list[dict[str, Any]]) -> str:
    chart = _chart("Bar", t(N_("Check-ins per day")), show_legend=False)
    labels = [d["day"][5:] for d in per_day]  # MM-DD
    chart.x_labels = labels
    chart.x_labels_major = labels[:: max(1, len(labels) // 8)]
    chart.show_minor_x_labels = False
    chart.add(t(N_("Check-ins")), [d["count"] for d in per_day])
    return _svg(chart)


def members_by_tier(t: Translator, by_tier: dict[str, int], names: dict[str, str]) -> str:
    chart = _chart("Pie", t(N_("Members by tier")), inner_radius=0.45)
    for tier, count in by_tier.items():
        chart.add(names.get(tier, tier), count)
    return _svg(chart)


def members_by_channel(t: Translator, by_channel: dict[str, int]) -> str:
    chart = _chart("Pie", t(N_("Members by app")), inner_radius=0.45)
    for channel, count in by_channel.items():
        chart.add(channel, count)
    return _svg(chart)


def points_moved(t: Translator, points: dict[str, int]) -> str:
    chart = _chart("Bar", t(N_("Points in the period")))
    for key, label in (
        ("earned", t(N_("Earned"))),
        ("spent", t(N_("Spent"))),
        ("expired", t(N_("Expired"))),
        ("reversed", t(N_("Taken back (refunds)"))),
    ):
        chart.add(label, [points[key]])
    return _svg(chart)


def spend_per_member(
    t: Translator, by_tier: dict[str, dict[str, Any]], names: dict[str, str]
) -> str:
    chart = _chart("Bar", t(N_("Spend per member by tier")), show_legend=False)
    chart.x_labels = [names.get(tier, tier) for tier in by_tier]
    values = [float(v["spend_per_member"] or 0) for v in by_tier.values()]
    chart.add(t(N_("Spend per member")), values)
    return _svg(chart)


def retention(t: Translator, cohorts: dict[str, dict[str, Any]]) -> str:
    chart = _chart("Bar", t(N_("Retention (still active, %)")), show_legend=False, range=(0, 100))
    chart.x_labels = [t(N_("New {days} days ago"), days=days) for days in cohorts]
    chart.add(t(N_("Still active")), [round((c["rate"] or 0) * 100, 1) for c in cohorts.values()])
    return _svg(chart)
