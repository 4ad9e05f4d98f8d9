"""RunExporter: the window's export actions: asks where (and which episode), then writes the files
through gym_gui.export on a reader thread."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QFileDialog, QInputDialog, QWidget

from gym_gui.export.tables import FORMATS, export_tables
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["RunExporter"]

_log = logging.getLogger(__name__)

ChooseDirectory = Callable[[str], "str | None"]
ChooseEpisode = Callable[[str, int], "int | None"]


class RunExporter(QObject):
    """Exports runs off the GUI thread. GUI thread only.

    ``choose_directory(title) -> str | None`` and ``choose_episode(run_id, default) -> int | None``
    ask the person (a QFileDialog and a QInputDialog; tests may replace them).
    Signals: ``finished(run_id, fmt, result)`` (the dict of ``export_tables`` / ``export_episode_gif``),
    ``failed(run_id, fmt, message)``.
    """

    finished = Signal(str, str, object)
    failed = Signal(str, str, str)

    def __init__(self, reader: StoreReader, dialog_parent: QWidget | None = None,
                 parent: QObject | None = None) -> None:
        """GUI thread; does not block."""
        super().__init__(parent)
        self._reader = reader
        self._dialog_parent = dialog_parent
        self.last_directory = str(Path.cwd())
        self.choose_directory: ChooseDirectory = self._ask_directory
        self.choose_episode: ChooseEpisode = self._ask_episode

    def _ask_directory(self, title: str) -> str | None:
        folder = QFileDialog.getExistingDirectory(self._dialog_parent, title, self.last_directory)
        return folder or None

    def _ask_episode(self, run_id: str, default: int) -> int | None:
        value, ok = QInputDialog.getInt(self._dialog_parent, "Export an episode as GIF",
                                        f"Episode index of run {run_id}:", default, 0, 2**31 - 1)
        return value if ok else None

    def export(self, run_id: str, fmt: str, *, episode_index: int | None = None,
               agent_id: str | None = None) -> bool:
        """Ask where (and, for ``gif``, which episode unless given), then write on a reader thread.
        GUI thread; never blocks on SQLite (the dialogs are modal). False when cancelled or not submitted."""
        if fmt not in (*FORMATS, "gif"):
            raise ValueError(f"unknown export format {fmt!r}")
        if fmt == "gif" and episode_index is None:
            episode_index = self.choose_episode(run_id, 0)
            if episode_index is None:
                return False
        folder = self.choose_directory(f"Export run {run_id} as {fmt.upper()} into")
        if not folder:
            return False
        self.last_directory = folder
        out = Path(folder)

        def query(store: TelemetrySQLiteStore) -> dict[str, Any]:
            conn = store._reader()  # noqa: SLF001 - the store's own per-thread read connection
            if fmt == "gif":
                from gym_gui.export.gif import export_episode_gif

                assert episode_index is not None
                safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
                return export_episode_gif(conn, run_id, episode_index, out / f"{safe}-episode{episode_index}.gif",
                                          agent_id=agent_id)
            return export_tables(conn, run_id, out, fmt)

        def failed(error: BaseException) -> None:
            _log.warning("export of run %s as %s failed: %s", run_id, fmt, error)
            self.failed.emit(run_id, fmt, str(error))

        return self._reader.submit(query, lambda result: self.finished.emit(run_id, fmt, result), failed)
