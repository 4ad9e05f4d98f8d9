"""``python -m gym_gui``: the windowed telemetry app (see gym_gui/app.py)."""

from gym_gui.app import main

raise SystemExit(main())
