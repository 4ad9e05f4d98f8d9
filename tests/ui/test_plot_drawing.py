"""What a chart's repaint draws: axes, titles, legend and grid come from cached pixmaps that are
redrawn when they change (a cached chart looks like the same chart drawn uncached after its ranges
stepped and its axes widened), and the grid is one item at the axes' tick values, not the axes'
own translucent grid. Real CurvePanels under pytest-qt, rendered offscreen."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtGui import QImage
from qtpy.QtWidgets import QApplication, QGraphicsItem

from gym_gui.live.curves import CurveData, EpisodePoint
from gym_gui.ui.plots.curve_panel import CurvePanel
from gym_gui.ui.plots.grid_lines import GridLines, grid_colour

CACHED = QGraphicsItem.CacheMode.DeviceCoordinateCache
NO_CACHE = QGraphicsItem.CacheMode.NoCache


def make_panel(qtbot: Any) -> CurvePanel:
    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def cached_items(panel: CurvePanel) -> list[QGraphicsItem]:
    items: list[QGraphicsItem] = []
    for chart in panel._charts.values():
        items += [chart.plot.getAxis("left"), chart.plot.getAxis("bottom"), chart.plot.titleLabel.item]
        if chart.grid is not None:
            items.append(chart.grid)
        legend = chart.plot.legend
        if legend is not None:
            items.append(legend)
            for sample, label in legend.items:
                items += [sample, label.item]
    return items


def pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return rows[:, : image.width(), :3].astype(int)


def shifted_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the smallest difference between ``b`` and ``a`` moved by up to one pixel either
    way (a cached text lands on whole device pixels, so it may sit a pixel from the same text
    drawn directly; a missing or stale text does not)."""
    h, w = a.shape[:2]
    padded = np.pad(a, ((1, 1), (1, 1), (0, 0)), mode="edge")
    best = np.full((h, w), 255)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            best = np.minimum(best, np.abs(padded[dy: dy + h, dx: dx + w] - b).max(axis=2))
    return best


def test_axes_titles_legend_and_grid_are_cached_and_the_axes_draw_no_grid(qtbot: Any) -> None:
    panel = make_panel(qtbot)
    for item in cached_items(panel):
        assert item.cacheMode() == CACHED, item
    for chart in panel._charts.values():
        assert isinstance(chart.grid, GridLines)
        assert chart.plot.getAxis("left").grid is False and chart.plot.getAxis("bottom").grid is False
    assert len(panel.plot_item("return").legend.items) == 2  # cached after its entries were added


def test_a_cached_chart_looks_like_the_same_chart_drawn_uncached_after_its_ranges_step(qtbot: Any) -> None:
    """The bug a cached axis can have: a pixmap kept from before its range or width changed (tick
    texts missing or stale). Each step grows the returns by a power of ten (wider y tick texts)
    and the episodes (new x ticks); the panel is grabbed beside a twin panel fed the same data
    whose axes and grids draw directly. Titles and legends draw directly in both (a cached text is
    placed on whole device pixels, so it may differ from the twin's by antialiasing)."""
    panel, twin = make_panel(qtbot), make_panel(qtbot)
    axes_and_grids = [id(item) for chart in panel._charts.values()
                      for item in (chart.plot.getAxis("left"), chart.plot.getAxis("bottom"), chart.grid)]
    for item in cached_items(panel):
        if id(item) not in axes_and_grids:
            item.setCacheMode(NO_CACHE)
    for item in cached_items(twin):
        item.setCacheMode(NO_CACHE)
    n = 0
    for step in range(12):
        scale = 10.0 ** (step // 2) * (1 if step % 2 else -1)
        points = [EpisodePoint(n + i, scale * np.sin(n + i), 20.0 + (n + i) * step, 1.0, 1.8e9 + n + i, {})
                  for i in range(9)]
        n += 9
        for p in (panel, twin):
            p.data.add_points(points)
            p.refresh()
        # every chart's ranges stepped (one per paint) and the axes laid out at their new widths
        qtbot.waitUntil(lambda: not panel.ranges_pending() and not twin.ranges_pending(), timeout=5000)
        QApplication.processEvents()
        differ = shifted_difference(pixels(panel.graphics.grab().toImage()), pixels(twin.graphics.grab().toImage()))
        assert (differ > 48).sum() == 0, f"step {step}: {(differ > 48).sum()} pixels differ"


def test_the_grid_has_a_line_at_every_tick_of_the_axes(qtbot: Any) -> None:
    panel = make_panel(qtbot)
    panel.data.add_points([EpisodePoint(i, float(i % 7), 20.0, 1.0, 1.8e9 + i, {}) for i in range(300)])
    panel.refresh()
    chart = panel._charts["return"]
    qtbot.waitUntil(lambda: chart.grid.line_count() > 0, timeout=5000)  # drawn at the next paint
    view_box = chart.view_box
    (x0, x1), (y0, y1) = view_box.viewRange()
    for axis, lo, hi, size in (("bottom", x0, x1, view_box.width()), ("left", y0, y1, view_box.height())):
        ticks = sorted(v for _spacing, values in chart.plot.getAxis(axis).tickValues(lo, hi, size)[:3]
                       for v in values if lo <= v <= hi)
        assert chart.grid.tick_values(axis) == ticks and ticks
    recomputes = chart.grid.recomputes
    panel.graphics.viewport().repaint()  # a repaint with the same ranges reuses the lines
    assert chart.grid.recomputes == recomputes
    view_box.setXRange(10, 20, padding=0)  # a zoom: new ticks
    qtbot.waitUntil(lambda: chart.grid.recomputes > recomputes and 15 in chart.grid.tick_values("bottom"), timeout=5000)


def test_grid_colours_match_pyqtgraphs_translucent_lines_on_white() -> None:
    major = grid_colour(0, 5, 400, 0.25)
    minor = grid_colour(1, 20, 400, 0.25)
    assert major.red() == major.green() == major.blue() == round(255 - 105 * 0.25)
    assert 255 > minor.red() > major.red()


def test_charts_step_their_ranges_one_per_event_loop_turn(qtbot: Any) -> None:
    """A new data set moves every chart's ranges, and each move lays out two axes again at the next
    paint: one chart moves per event-loop turn, the others in the turns after, none left behind."""
    panel = make_panel(qtbot)
    index = np.arange(1000, dtype=float)
    data = CurveData.from_columns(index, np.sin(index), 20 + index % 17, (index % 3 > 0).astype(float),
                                  1.8e9 + index, {"epsilon": 1 - index / 1000}, window=10)
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    charts = panel._charts

    def moved() -> int:
        return sum(chart.shown_range is not None for chart in charts.values())

    assert moved() == 0
    panel.set_data(data)
    assert "meta:epsilon" not in charts and moved() == 1 and panel.ranges_pending()  # its chart: a turn of its own
    for expected in (2, 3):  # each turn's call (the timer's slot, run here): one more
        panel._follow_charts()
        assert moved() == expected
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    assert moved() == len(charts) == 4
    for chart in charts.values():
        lo, hi = chart.view_box.viewRange()[0]
        assert lo <= 0 and hi >= 999 and chart.following


def test_a_chart_added_later_resizes_no_other_chart(qtbot: Any) -> None:
    """A worker number seen for the first time gets a chart; the columns share the width equally,
    so the charts already there keep their size (a resize lays out all their axes again)."""
    panel = make_panel(qtbot)
    panel.data.add_points([EpisodePoint(i, float(i), 20.0, 1.0, 1.8e9 + i, {}) for i in range(50)])
    panel.refresh()
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    before = {key: chart.plot.geometry() for key, chart in panel._charts.items()}
    panel.data.add_points([EpisodePoint(50, 1.0, 20.0, 1.0, 1.8e9 + 50, {"epsilon": 0.5})])
    panel.refresh()
    qtbot.waitUntil(lambda: "meta:epsilon" in panel._charts and bool(panel._charts["meta:epsilon"].curves),
                    timeout=5000)
    QApplication.processEvents()  # the posted layout request
    assert {key: panel._charts[key].plot.geometry() for key in before} == before
    widths = {round(chart.plot.geometry().width()) for chart in panel._charts.values()}
    assert len(widths) == 1  # two columns of equal width


def test_a_new_panels_first_paint_draws_one_chart_and_the_others_follow_one_per_turn(qtbot: Any) -> None:
    """Each chart's first paint lays out its axes, grid and title: a new panel paints the first
    chart, then shows the next one per turn after a paint, laid out where it belongs all along."""
    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    charts = list(panel._charts.values())
    assert [chart.plot.opacity() for chart in charts] == [1.0, 0.0, 0.0] and panel.ranges_pending()
    panel.show()
    qtbot.waitExposed(panel)
    geometry = [chart.plot.geometry() for chart in charts]
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    assert [chart.plot.opacity() for chart in charts] == [1.0, 1.0, 1.0]
    assert [chart.plot.geometry() for chart in charts] == geometry
    image = pixels(panel.graphics.grab().toImage())
    for chart in charts:  # each drawn: its axes' dark tick texts are there
        rect = chart.plot.mapRectToScene(chart.plot.boundingRect()).toAlignedRect()
        assert image[rect.top(): rect.bottom(), rect.left(): rect.right()].min() < 120
    hidden = CurvePanel(CurveData())  # never shown, stopped: nothing left out
    qtbot.addWidget(hidden)
    hidden.stop(5)
    assert [chart.plot.opacity() for chart in hidden._charts.values()] == [1.0, 1.0, 1.0]


def test_new_charts_are_built_one_per_turn_outside_the_refresh_each_shown_after_a_paint(qtbot: Any) -> None:
    """Two worker numbers seen at once: neither chart is built inside the refresh that found them
    (a chart's widgets take 10 to 20 ms); each is built in a turn of its own, left out of the paint
    after its build (laid out, not painted), shown after that paint, and only then is the next
    one built."""
    panel = make_panel(qtbot)
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    paints: list[int] = []
    panel.graphics.scene().sigPrepareForPaint.connect(lambda: paints.append(1))
    builds: list[tuple[str, int, list[float], bool]] = []  # name, paints so far, opacities, in a refresh
    in_refresh = [False]
    original_refresh, original_build = panel.refresh, panel._add_series_chart

    def refresh() -> bool:
        in_refresh[0] = True
        try:
            return original_refresh()
        finally:
            in_refresh[0] = False

    def build(name: str, **kwargs: Any) -> Any:
        builds.append((name, len(paints), [c.plot.opacity() for c in panel._charts.values()], in_refresh[0]))
        return original_build(name, **kwargs)

    panel.refresh, panel._add_series_chart = refresh, build  # type: ignore[method-assign]
    panel.data.add_points([EpisodePoint(i, float(i), 20.0, 1.0, 1.8e9 + i, {"epsilon": 1 - i / 50, "lr": 0.1})
                           for i in range(50)])
    assert panel.refresh() and len(panel._charts) == 3 and panel.ranges_pending()  # none built in it
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    assert [name for name, *_rest in builds] == ["meta:epsilon", "meta:lr"]
    assert not any(inside for *_rest, inside in builds)
    (_n, paints_at_first, _o, _i), (_n2, paints_at_second, opacities_at_second, _i2) = builds
    assert paints_at_second >= paints_at_first + 2  # the paint leaving it out, the one showing it
    assert opacities_at_second == [1.0, 1.0, 1.0, 1.0]  # the first was shown before the second was built
    assert [chart.plot.opacity() for chart in panel._charts.values()] == [1.0] * 5
    assert panel.curve_data("meta:lr")[1].tolist() == [0.1] * 50
