"""One GuiPump per window: every live and replay controller of the window is ticked by it, a run that
is over asks for no tick, and shutdown leaves the pump stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.qt.app_services import AppServices
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.ui.telemetry_window import MainWindow


def test_the_windows_controllers_share_its_one_pump_and_shutdown_stops_it(qtbot: Any, db_path: Path) -> None:
    services = AppServices(db_path, bus=RunBus())
    window = MainWindow(services)
    window.confirm_close = lambda _run_ids: True
    qtbot.addWidget(window)
    pump = services.pump
    assert not pump.is_running()
    services.start()
    window.show()
    try:
        assert pump.is_running() and services.registry.pump is pump and window.runs_view.pump is pump
        spec = WorkerSpec(episodes=5, step_rate_hz=0.0, heartbeat_interval_s=0.2)
        with qtbot.waitSignal(window.online_opened, timeout=10_000):
            run_id = window.start_run(spec)
        assert run_id is not None
        live = window.online_controller(run_id, spec.agent_id)
        assert live is not None and live.pump is pump and live.view in pump and live.is_polling()
        replay = window._replay_controllers[run_id]  # noqa: SLF001 (the window's own map)
        assert replay.pump is pump
        with qtbot.waitSignal(window.replay_opened, timeout=60_000):
            pass
        assert replay.view not in pump and not replay.is_polling()  # ready: left the pump
        qtbot.waitUntil(lambda: live.stats()["episodes_total"] == 5, timeout=10_000)
        # The run is over: its views ask for no tick (the pump's timer runs only for other views' deadlines,
        # e.g. the Runs tab's refresh).
        qtbot.waitUntil(lambda: live.view.next_deadline_s(pump.clock()) is None, timeout=10_000)
        assert pump.polls > 0 and pump.view_errors == 0
    finally:
        assert window.shutdown(30)
    assert not pump.is_running() and not pump.timer_active() and window.timers_active() == []
    assert live.view not in pump and not live.is_polling()


def test_an_online_tab_takes_a_backlog_in_slices_of_one_tick_each(qtbot: Any, db_path: Path) -> None:
    from event_factory import EventFactory
    from gym_gui.ui.window_tabs import LIVE_TICK_EVENTS

    services = AppServices(db_path, bus=RunBus())
    window = MainWindow(services)
    window.confirm_close = lambda _run_ids: True
    qtbot.addWidget(window)
    services.start()
    window.show()
    try:
        window._open_online("run-backlog", "agent-1")  # noqa: SLF001 (as start_run opens it, without a worker)
        live = window.online_controller("run-backlog", "agent-1")
        tab = window.online_tab("run-backlog", "agent-1")
        assert live is not None and tab is not None
        sizes: list[int] = []
        seqs: list[int] = []
        live.batch_ready.connect(lambda batch: (sizes.append(len(batch.steps)), seqs.extend(e.seq_id for e in batch.steps)))
        f = EventFactory("run-backlog", "agent-1")
        steps = [f.step(0, i) for i in range(3 * LIVE_TICK_EVENTS + 100)]
        for evt in steps:  # a backlog the GUI thread did not see arrive (published before its next tick)
            services.bus.publish(evt)
        qtbot.waitUntil(lambda: tab.steps_seen == len(steps), timeout=10_000)
        assert max(sizes) <= LIVE_TICK_EVENTS and len(sizes) >= 4  # one slice per tick
        assert seqs == [e.seq_id for e in steps]  # every step once, in order
        assert live.stats()["dropped_total"] == 0
    finally:
        assert window.shutdown(30)
