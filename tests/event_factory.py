"""Builds well-formed TelemetryEvent streams for tests (shared by the durable-path and Qt-layer tests)."""

from __future__ import annotations

from typing import Any

from gym_gui.telemetry.events import TelemetryEvent, Topic, iso_from_unix_s

_T0 = 1_800_000_000.0


class EventFactory:
    """Builds a stream's events with strictly increasing seq_ids and increasing timestamps."""

    def __init__(self, run_id: str = "run1", agent_id: str | None = "agent1", first_seq: int = 0) -> None:
        self.run_id = run_id
        self.agent_id = agent_id
        self.seq = first_seq - 1

    def _next(self, topic: Topic, payload: dict[str, Any]) -> TelemetryEvent:
        self.seq += 1
        return TelemetryEvent(topic, self.run_id, self.agent_id, self.seq, iso_from_unix_s(_T0 + self.seq / 1000), payload)

    def started(self, env_id: str = "FrozenLake-v1", **extra: Any) -> TelemetryEvent:
        return self._next(Topic.RUN_STARTED, {"env_id": env_id, "config": {"alpha": 0.1}, **extra})

    def heartbeat(self, **stats: Any) -> TelemetryEvent:
        return self._next(Topic.RUN_HEARTBEAT, {"steps": self.seq, **stats})

    def step(self, episode_index: int, step_index: int, **extra: Any) -> TelemetryEvent:
        payload: dict[str, Any] = {
            "episode_index": episode_index,
            "step_index": step_index,
            "action": step_index % 4,
            "observation": step_index,
            "reward": 0.5,
            "terminated": False,
            "truncated": False,
            "info": {"prob": 1.0},
            "render_payload": {"grid": [["S", "F"], ["H", "G"]], "agent": [0, step_index % 2]},
        }
        payload.update(extra)
        return self._next(Topic.STEP_APPENDED, payload)

    def episode(self, episode_index: int, length: int, **extra: Any) -> TelemetryEvent:
        payload: dict[str, Any] = {
            "episode_index": episode_index,
            "total_reward": 0.5 * length,
            "length": length,
            "terminated": True,
            "truncated": False,
            "outcome": "goal",
            "metadata": {"seed": episode_index},
        }
        payload.update(extra)
        return self._next(Topic.EPISODE_FINALIZED, payload)

    def completed(self, outcome: str = "completed", **extra: Any) -> TelemetryEvent:
        payload: dict[str, Any] = {"outcome": outcome, "exit_code": 0, "signal": None, "stderr_tail": None,
                                   "summary": {"episodes": 1}}
        payload.update(extra)
        return self._next(Topic.RUN_COMPLETED, payload)

    def episodes(self, count: int, length: int, first_episode: int = 0) -> list[TelemetryEvent]:
        """``count`` episodes of ``length`` steps, each followed by its EPISODE_FINALIZED."""
        events: list[TelemetryEvent] = []
        for ep in range(first_episode, first_episode + count):
            events += [self.step(ep, i) for i in range(length)]
            events.append(self.episode(ep, length))
        return events

    def run(self, episodes: int, length: int) -> list[TelemetryEvent]:
        """A whole run: started, episodes, completed."""
        return [self.started(), *self.episodes(episodes, length), self.completed()]
