"""ChartViewBox: a pyqtgraph ViewBox whose context menu is built when it is first asked for.

A ViewBox builds its context menu ("View All", the X and Y axis forms, the mouse mode) with
itself: two Qt Designer forms, about 40 widgets and their connections, a third to a half of a
chart's construction (5 to 13 ms of a 15 to 30 ms PlotItem, profiled under PyQt6). A chart is
built on the GUI thread in one piece, when a worker number is first seen or a panel is made, so
the menu is left out of it and built at the first right click (``getMenu``) or when a parent asks
for its actions (``getContextMenus``); the menu is the same pyqtgraph ``ViewBoxMenu`` then,
holding the other views' names for axis linking. GUI thread only.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from pyqtgraph.graphicsItems.ViewBox.ViewBoxMenu import ViewBoxMenu

__all__ = ["ChartViewBox"]


class ChartViewBox(pg.ViewBox):
    """A ViewBox with its context menu enabled but built on first use (module doc). GUI thread."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("enableMenu", None)
        super().__init__(enableMenu=False, **kwargs)  # no menu built now ...
        self.state["enableMenu"] = True  # ... but enabled: menuEnabled() is True, a right click raises it
        self.menus_built = 0  # context menus built (tests)

    def getMenu(self, ev: Any) -> ViewBoxMenu | None:  # noqa: N802 (pyqtgraph's name)
        """The context menu, built now if this is its first use (None when disabled). GUI thread."""
        return self._menu()

    def getContextMenus(self, event: Any) -> list[Any]:  # noqa: N802 (pyqtgraph's name)
        """The menu's actions for a parent's context menu, built now if needed. GUI thread."""
        menu = self._menu()
        return menu.actions() if menu is not None else []

    def _menu(self) -> ViewBoxMenu | None:
        if not self.menuEnabled():
            return None
        if self.menu is None:
            self.menu = ViewBoxMenu(self)
            self.menus_built += 1
            self.updateViewLists()  # the other views' names in its axis-link combos
        return self.menu
