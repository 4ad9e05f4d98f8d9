"""``python -m gym_gui.db``: look at telemetry database files and import the existing gym_gui app's (Qt-free).

See ``gym_gui.db.__main__`` (``--help``) and docs/schema.md, "Files of the existing gym_gui app".
"""
