"""A CurvePanel's rows of charts are CHART_HEIGHT_PX tall whatever the panel's height, the view
exactly as tall as its rows (the scroll area scrolls): a chart that adds a row resizes no chart
already there, and the columns keep equal widths. Real widgets under pytest-qt."""

from __future__ import annotations

from typing import Any

from gym_gui.live.curve_points import EpisodePoint
from gym_gui.live.curves import CurveData
from gym_gui.ui.plots.curve_panel import CHART_HEIGHT_PX, CurvePanel


def shown_panel(qtbot: Any, width_px: int, height_px: int, columns: int) -> CurvePanel:
    panel = CurvePanel(CurveData(), columns=columns)
    qtbot.addWidget(panel)
    panel.resize(width_px, height_px)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    return panel


def add_numbers(qtbot: Any, panel: CurvePanel, keys: list[str], first: int) -> None:
    panel.data.add_points([EpisodePoint(i, float(i), 5.0, 1.0, 10.0 + i, {k: 1.0 for k in keys})
                           for i in range(first, first + 3)])
    panel.refresh()
    qtbot.waitUntil(lambda: len(panel.chart_titles()) == 3 + len(keys) and not panel.ranges_pending(),
                    timeout=5000)


def test_a_chart_that_adds_a_row_resizes_no_chart_and_the_rows_keep_their_height(qtbot: Any) -> None:
    panel = shown_panel(qtbot, 1200, 800, columns=3)  # room for four rows: the charts do not stretch
    charts = list(panel._charts.values())  # noqa: SLF001 (observed)
    assert [chart.plot.geometry().height() for chart in charts] == [CHART_HEIGHT_PX] * 3
    moved: list[str] = []
    resized: list[str] = []
    for chart in charts:
        chart.plot.geometryChanged.connect(lambda key=chart.key: moved.append(key))
        chart.view_box.sigResized.connect(lambda _vb, key=chart.key: resized.append(key))
    keys = [f"m{k}" for k in range(4)]  # the 4th chart adds a row, the 5th and 6th join it, the 7th adds one
    for n in range(1, len(keys) + 1):
        add_numbers(qtbot, panel, keys[:n], first=3 * n)
    assert moved == [] and resized == []  # no chart already there moved or was resized, even for a moment
    charts = list(panel._charts.values())  # noqa: SLF001
    assert len(charts) == 7
    assert {chart.plot.geometry().height() for chart in charts} == {CHART_HEIGHT_PX}
    for col in range(3):  # equal widths per column, and the columns share the width equally
        assert len({chart.plot.geometry().width() for chart in charts[col::3]}) == 1
    assert len({round(chart.plot.geometry().width()) for chart in charts}) == 1
    bottom = max(chart.plot.geometry().bottom() for chart in charts)
    assert panel.graphics.height() >= bottom >= 3 * CHART_HEIGHT_PX  # the view is as tall as its three rows
    assert panel.graphics.height() - bottom < 10  # ... and no taller: the room below is the scroll area's
    panel.stop(5)


def test_more_rows_than_fit_scroll_and_keep_their_height(qtbot: Any) -> None:
    panel = shown_panel(qtbot, 900, 300, columns=2)  # the view shows less than two rows
    add_numbers(qtbot, panel, ["loss", "lr"], first=0)  # five charts: three rows
    charts = list(panel._charts.values())  # noqa: SLF001
    assert {chart.plot.geometry().height() for chart in charts} == {CHART_HEIGHT_PX}
    assert panel.scroll.verticalScrollBar().maximum() > 0  # the rows scroll
    assert panel.graphics.height() >= 3 * CHART_HEIGHT_PX
    panel.stop(5)


def test_a_row_that_outgrows_the_panel_narrows_no_chart(qtbot: Any) -> None:
    """The scroll bar's place is kept from the start: its appearance resizes no chart."""
    panel = shown_panel(qtbot, 900, 420, columns=2)  # two rows fit, a third does not
    charts = list(panel._charts.values())  # noqa: SLF001 (observed)
    widths = [chart.plot.geometry().width() for chart in charts]
    resized: list[str] = []
    for chart in charts:
        chart.view_box.sigResized.connect(lambda _vb, key=chart.key: resized.append(key))
    add_numbers(qtbot, panel, ["loss", "lr"], first=0)  # five charts: three rows, more than fit
    assert panel.scroll.verticalScrollBar().maximum() > 0  # the rows scroll now
    assert resized == [] and [chart.plot.geometry().width() for chart in charts] == widths
    panel.stop(5)
