"""A chart's TickAxis lays out exactly pyqtgraph's axis (the same axis line, ticks, tick texts and
their rectangles for every range, length, orientation and font), measuring each distinct tick text
once per font instead of at every layout. Real pyqtgraph axes in a real PlotItem under pytest-qt,
painted into a QPicture as ``AxisItem.paint`` does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QRectF
from qtpy.QtGui import QFont, QPainter, QPicture

from gym_gui.ui.plots.tick_axis import TickAxis, chart_axes


class CountingPainter(QPainter):
    """A QPainter counting its text measurements."""

    measured = 0

    def boundingRect(self, *args: Any) -> QRectF:  # noqa: N802 (Qt's name)
        self.measured += 1
        return super().boundingRect(*args)


def _specs(specs: Any) -> Any:
    """Draw specs as plain values (pens by colour and width, points and rectangles by coordinates)."""
    if specs is None:
        return None
    axis_spec, tick_specs, text_specs = specs
    pen, p1, p2 = axis_spec

    def pen_of(pen: Any) -> tuple[Any, ...]:
        return pen.color().getRgb(), pen.widthF(), pen.style(), pen.isCosmetic()

    return ((pen_of(pen), (p1.x(), p1.y()), (p2.x(), p2.y())),
            [(pen_of(pen), (a.x(), a.y()), (b.x(), b.y())) for pen, a, b in tick_specs],
            [((r.x(), r.y(), r.width(), r.height()), int(flags), text) for r, flags, text in text_specs])


def _layout(axis: TickAxis, *, ours: bool) -> tuple[Any, int]:
    picture = QPicture()
    painter = CountingPainter(picture)
    if axis.style["tickFont"]:
        painter.setFont(axis.style["tickFont"])
    try:
        specs = axis.generateDrawSpecs(painter) if ours else pg.AxisItem.generateDrawSpecs(axis, painter)
        return _specs(specs), painter.measured
    finally:
        painter.end()


def _chart(qtbot: Any) -> tuple[pg.PlotWidget, pg.PlotItem]:
    widget = pg.PlotWidget(background="w", axisItems=chart_axes())
    qtbot.addWidget(widget)
    widget.resize(600, 300)
    widget.show()
    qtbot.waitExposed(widget)
    return widget, widget.getPlotItem()


def test_the_layout_is_pyqtgraphs_for_every_range_orientation_and_font(qtbot: Any) -> None:
    widget, plot = _chart(qtbot)
    rng = np.random.default_rng(13)
    ranges = [(0, 1), (-1.234, 1.5), (0, 1_020_000), (999.5, 1000.5), (-5e-7, 3e-6), (1.8e9, 1.8e9 + 3600),
              (3, -2), (0.1, 0.30000000000000004), (15, 40)]
    ranges += [tuple(sorted(rng.normal(0, 10.0 ** rng.integers(-6, 9), 2))) for _ in range(60)]
    compared = with_texts = 0
    for font_px in (None, 7, 15):
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            if font_px is not None:
                font = QFont()
                font.setPixelSize(font_px)
                axis.setTickFont(font)
            for size in ((600, 300), (250, 120)):
                widget.resize(*size)
                qtbot.waitUntil(lambda size=size: widget.width() == size[0])
                for lo, hi in ranges:
                    axis.setRange(lo, hi)
                    theirs, _ = _layout(axis, ours=False)
                    ours, _ = _layout(axis, ours=True)
                    assert ours == theirs, (name, font_px, size, lo, hi)
                    compared += 1
                    with_texts += bool(theirs and theirs[2])
    assert compared == 3 * 2 * 2 * len(ranges) and with_texts > compared * 3 // 4  # texts laid out, most times


def test_each_distinct_tick_text_is_measured_once_per_font(qtbot: Any) -> None:
    _widget, plot = _chart(qtbot)
    axis = plot.getAxis("bottom")
    axis.setRange(0, 1_020_000)
    first, measured_first = _layout(axis, ours=True)
    again, measured_again = _layout(axis, ours=True)
    _, measured_by_pyqtgraph = _layout(axis, ours=False)
    assert first == again and measured_first > 0 and measured_again == 0 and measured_by_pyqtgraph > 0
    axis.setRange(0, 1_040_000)  # a range step: the same texts, mostly
    _, measured_step = _layout(axis, ours=True)
    assert measured_step < measured_first
    font = QFont()
    font.setPixelSize(18)
    axis.setTickFont(font)  # another font: measured afresh, laid out as pyqtgraph does
    bigger, measured_bigger = _layout(axis, ours=True)
    assert measured_bigger > 0 and bigger == _layout(axis, ours=False)[0]


def test_an_axis_drawing_its_own_grid_is_laid_out_as_pyqtgraphs(qtbot: Any) -> None:
    _widget, plot = _chart(qtbot)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setGrid(128)
        for lo, hi in ((0, 1), (15, 40), (0, 1_020_000), (-3.5, 2e-3)):
            axis.setRange(lo, hi)
            ours, theirs = _layout(axis, ours=True)[0], _layout(axis, ours=False)[0]
            assert ours == theirs and ours is not None and ours[1], (name, lo, hi)
