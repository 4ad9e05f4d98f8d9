"""Numpy frames and observations of the existing gym_gui's steps to its ``gym_gui.replay.ReplayWriter`` (Qt-free).

``TelemetryDBSink(replay_dir=...)`` hands each step's fields to ``ReplayFrames.take_arrays``: when the
step carries a numpy frame (``render_payload`` itself, or its ``"rgb_array"``/``"frame"`` entry) or a
numpy observation, they go to one ``ReplayWriter(run_id, replay_dir)`` per run (``.start()``ed on
first use), whose ``record_step(frame=, observation=, action=, reward=, done=)`` returns the
``frame_ref``; ``obs_ref`` is that ref with ``/frames/`` replaced by ``/observations/``, and the arrays
are removed from the row (EMBEDDING.md section 3).

``gym_gui.replay`` is the existing application's module; this project has none. When it cannot be
imported, ``ReplayFrames.open`` logs one WARNING and returns None: the sink then stores steps as it
does without ``replay_dir`` (the arrays stay in the row, through the store's JSON encoding), so
nothing is lost. All methods run on the sink thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

__all__ = ["ReplayFrames"]

_log = logging.getLogger(__name__)
_FRAME_KEYS = ("rgb_array", "frame")
_warned_unavailable = False


def _is_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


class ReplayFrames:
    """One ``ReplayWriter`` per run under ``replay_dir``; arrays out of step fields, refs in."""

    def __init__(self, writer_type: type, replay_dir: Path) -> None:
        self._writer_type = writer_type
        self.replay_dir = Path(replay_dir)
        self._writers: dict[str, Any] = {}

    @classmethod
    def open(cls, replay_dir: Path | str | None) -> ReplayFrames | None:
        """A ReplayFrames if ``replay_dir`` is set and ``gym_gui.replay.ReplayWriter`` imports, else None.

        Sink thread; does no I/O itself (writers are made on the first array of a run).
        """
        global _warned_unavailable
        if replay_dir is None:
            return None
        try:
            from gym_gui.replay import ReplayWriter  # type: ignore[import-not-found]  # the host app's
        except ImportError as exc:
            if not _warned_unavailable:
                _warned_unavailable = True
                _log.warning("replay_dir=%s given but gym_gui.replay.ReplayWriter is not importable (%s): "
                             "frames and observations are stored in the SQLite rows, not in replay files",
                             replay_dir, exc)
            return None
        return cls(ReplayWriter, Path(replay_dir))

    def take_arrays(self, fields: dict[str, Any]) -> None:
        """Move a step's numpy frame/observation to the run's writer; set frame_ref/obs_ref. Sink thread.

        Leaves ``fields`` as it is when it holds no array or has no run_id. A writer error propagates
        (the sink reports it and stores nothing of that step's arrays).
        """
        render = fields.get("render_payload")
        frame, frame_key = None, None
        if _is_array(render):
            frame = render
        elif isinstance(render, Mapping):
            for key in _FRAME_KEYS:
                if _is_array(render.get(key)):
                    frame, frame_key = render[key], key
                    break
        observation = fields.get("observation")
        if not _is_array(observation):
            observation = None
        run_id = fields.get("run_id")
        if (frame is None and observation is None) or not run_id:
            return
        writer = self._writer(str(run_id))
        frame_ref = writer.record_step(frame=frame, observation=observation, action=fields.get("action"),
                                       reward=fields.get("reward"),
                                       done=bool(fields.get("terminated") or fields.get("truncated")))
        if frame_ref:
            fields["frame_ref"] = frame_ref
            fields["obs_ref"] = str(frame_ref).replace("/frames/", "/observations/")
        if observation is not None:
            fields["observation"] = None
        if frame is not None:
            if frame_key is None:
                fields["render_payload"] = None
            else:
                fields["render_payload"] = {k: v for k, v in render.items() if k != frame_key}

    def _writer(self, run_id: str) -> Any:
        writer = self._writers.get(run_id)
        if writer is None:
            writer = self._writer_type(run_id, self.replay_dir)
            writer.start()
            self._writers[run_id] = writer
        return writer

    def close(self) -> None:
        """Close every writer (errors logged). Sink thread, or the stopping thread after the join."""
        writers, self._writers = self._writers, {}
        for run_id, writer in writers.items():
            try:
                writer.close()
            except Exception:
                _log.exception("closing the replay writer of run %s failed", run_id)
