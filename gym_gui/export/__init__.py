"""Export of stored runs (Qt-free): episodes and steps to CSV or JSONL, an episode's frames to a GIF.

Every function takes a read connection to the telemetry file (``open_readonly(path)``, or the
store's reader in the app) and streams rows: a run of any size is exported without holding it in
memory. ``python -m gym_gui.export`` runs the same headless (docs/export.md).
"""

from gym_gui.export.tables import FORMATS, ExportError, export_tables, open_readonly

__all__ = ["FORMATS", "ExportError", "export_tables", "open_readonly"]
