"""AgentOnlineTab fed with LiveBatches of real step events: exact counters, bounded tables, the newest
frame, the stall banner, ToyText defaults, and per-batch cost."""

from __future__ import annotations

import time
from typing import Any, Sequence

from qtpy.QtWidgets import QTableView

from event_factory import EventFactory
from event_loop_turns import run_turns
from gym_gui.live.live_batch import LiveBatch
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.ui.online_tab import AgentOnlineTab
from ui_payloads import cartpole_payload, frozenlake_payload, toytext_run


def frozenlake_grid(observation: int) -> dict[str, Any]:
    return frozenlake_payload(observation)


def make_tab(qtbot: Any, **kwargs: Any) -> AgentOnlineTab:
    tab = AgentOnlineTab("run1", "agent1", **kwargs)
    qtbot.addWidget(tab)
    tab.resize(900, 700)
    return tab


def batch_of(events: Sequence[TelemetryEvent], **totals: Any) -> LiveBatch:
    steps = tuple(e for e in events if e.topic is Topic.STEP_APPENDED)
    episodes = tuple(e for e in events if e.topic is Topic.EPISODE_FINALIZED)
    return LiveBatch("run1", "agent1", steps=steps, episodes=episodes,
                     latest_step=steps[-1] if steps else None, **totals)


def chunks(events: list[TelemetryEvent], size: int) -> list[list[TelemetryEvent]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


def test_batches_of_real_steps_update_the_counters_exactly(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.on_run_started(f.started("FrozenLake-v1", render_kind="grid", env_family="FrozenLake"))
    events = toytext_run(f, episodes=6, max_steps=10)
    steps = [e for e in events if e.topic is Topic.STEP_APPENDED]
    episodes = [e for e in events if e.topic is Topic.EPISODE_FINALIZED]
    seen = 0
    for i, part in enumerate(chunks(events, 7)):
        seen += sum(e.topic is Topic.STEP_APPENDED for e in part)
        tab.on_batch(batch_of(part, steps_total=seen, dropped_total=i, backfilled_total=2 * i, pending_backfill=1))
        assert tab.header_text("steps_seen") == str(seen)
    last = steps[-1].payload
    assert tab.steps_seen == len(steps) and tab.episodes_seen == len(episodes)
    assert tab.header_text("episodes_seen") == str(len(episodes))
    assert tab.header_text("status") == "running" and tab.header_text("env") == "FrozenLake-v1"
    assert tab.header_text("episode") == str(last["episode_index"])
    assert tab.header_text("step") == str(last["step_index"])
    assert tab.header_text("last_reward") == f"{last['reward']:.6g}"
    assert tab.header_text("dropped") == str(i) and tab.header_text("backfilled") == str(2 * i)
    assert tab.header_text("pending") == "1" and tab.header_text("unrecoverable") == "0"
    assert not tab.tables_visible()  # (a ToyText run: its tables hold their rows until shown)
    tab.set_tables_visible(True)
    assert tab.step_model.rowCount() == len(steps)
    assert [tab.episode_model.row_at(r).episode_index for r in range(tab.episode_model.rowCount())] == list(range(6))
    row = tab.episode_model.row_at(5)
    assert (row.total_reward, row.length, row.outcome) == (
        episodes[5].payload["total_reward"], episodes[5].payload["length"], episodes[5].payload["outcome"])


def test_the_newest_frame_is_rendered_and_only_it(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    steps = [e for e in toytext_run(f, episodes=4, max_steps=8) if e.topic is Topic.STEP_APPENDED]
    agents = [s.payload["render_payload"]["agent"] for s in steps]
    latest = next(s for s, a in zip(steps, agents) if a != agents[-1])
    # A batch whose latest_step is not its last step: that one is the frame shown.
    tab.on_batch(LiveBatch("run1", "agent1", steps=tuple(steps), latest_step=latest))
    state = tab.render_view.grid_view.grid_state()
    assert tab.render_view.kind == "grid" and state is not None
    assert list(state.agent) == latest.payload["render_payload"]["agent"] != agents[-1]
    assert tab.render_view.grid_view.layout_parses == 1
    assert tab.steps_seen == len(steps)


def test_rgb_frames_show_in_the_video_view_and_a_step_without_a_frame_keeps_the_last(
        qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.on_run_started(f.started("CartPole-v1", render_kind="rgb", env_family="CartPole"))
    first = f.step(0, 0, observation=[0.0, 0.1, 0.0, -0.1], render_payload=cartpole_payload(0))
    tab.on_batch(batch_of([first]))
    image = tab.render_view.video_view.image()
    assert tab.render_view.kind == "rgb" and image is not None and (image.width(), image.height()) == (150, 100)
    tab.on_batch(batch_of([f.step(0, 1, render_payload=None)]))
    assert tab.render_view.video_view.image() is image and tab.header_text("step") == "1"
    assert tab.tables_visible()  # not ToyText: the tables are shown by default


def test_the_table_keeps_the_newest_n_rows_while_the_counters_count_every_step(
        qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot, max_table_rows=100)
    inserts: list[tuple[int, int]] = []
    removes: list[tuple[int, int]] = []
    tab.step_model.rowsInserted.connect(lambda _p, a, b: inserts.append((a, b)))
    tab.step_model.rowsRemoved.connect(lambda _p, a, b: removes.append((a, b)))
    sizes = [60, 60, 250, 5]
    all_steps: list[TelemetryEvent] = []
    for n in sizes:
        steps = [f.step(len(all_steps) // 50, (len(all_steps) + i) % 50, reward=1.0) for i in range(n)]
        all_steps += steps
        tab.on_batch(batch_of(steps))
    assert tab.steps_seen == sum(sizes) == tab.step_model.appended_total
    assert tab.header_text("steps_seen") == str(sum(sizes))
    assert tab.step_model.rowCount() == 100
    assert [tab.step_model.step_at(r).seq_id for r in range(100)] == [e.seq_id for e in all_steps[-100:]]
    assert len(inserts) == len(sizes)  # one insert per batch, never per row
    assert inserts == [(0, 59), (40, 99), (0, 99), (95, 99)] and removes == [(0, 19), (0, 99), (0, 4)]
    view = tab.step_view
    assert isinstance(view, QTableView) and view.model() is tab.step_model
    assert tab.step_model.index(99, 0).data() == str(all_steps[-1].seq_id)


def test_a_4096_step_batch_is_one_bulk_insert_and_cheap(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.show()
    qtbot.waitExposed(tab)
    steps = [f.step(i // 100, i % 100, reward=0.25) for i in range(3 * 4096)]
    batches = [LiveBatch("run1", "agent1", steps=tuple(part), latest_step=part[-1]) for part in chunks(steps, 4096)]
    inserts: list[int] = []
    tab.step_model.rowsInserted.connect(lambda *_: inserts.append(1))
    started = time.perf_counter()
    for batch in batches:
        tab.on_batch(batch)
    elapsed = time.perf_counter() - started
    assert inserts == [1, 1, 1] and tab.steps_seen == 3 * 4096
    assert tab.step_model.rowCount() == 10_000 and tab.header_text("steps_seen") == "12,288"
    assert tab.step_model.step_at(9_999).seq_id == steps[-1].seq_id
    # The last episode (122) has 88 steps of reward 0.25 so far.
    assert tab.header_text("episode") == "122" and tab.header_text("episode_return") == "22"
    assert elapsed < 1.5, f"3 x 4096-step batches took {elapsed:.3f} s"


def test_return_so_far_follows_the_newest_episode(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.on_batch(batch_of([f.step(0, i, reward=1.0) for i in range(3)]))
    assert tab.header_text("episode_return") == "3"
    tab.on_batch(batch_of([f.step(0, 3, reward=-0.5), f.episode(0, 4), f.step(1, 0, reward=2.0)]))
    assert tab.header_text("episode_return") == "2"
    old = EventFactory("run1", "agent1", first_seq=2).step(0, 2, reward=100.0)  # a backfilled older step
    tab.on_batch(LiveBatch("run1", "agent1", steps=(old,), backfilled=1, backfilled_total=1))
    assert tab.header_text("episode_return") == "2" and tab.header_text("backfilled") == "1"
    assert tab.header_text("step") == "0"  # no newer latest_step: the header keeps the newest one


def test_toytext_hides_the_tables_by_default_and_the_button_shows_them(qtbot: Any,
                                                                      factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.show()
    tab.on_run_started(f.started("Taxi-v3", render_kind="grid", env_family="Taxi"))
    assert not tab.tables_visible() and not tab.tables.isVisible()
    assert tab.render_view.isVisible() and tab.tables_button.text() == "Show tables"
    tab.tables_button.click()
    assert tab.tables_visible() and tab.tables.isVisible() and tab.tables_button.text() == "Hide tables"
    tab.on_batch(batch_of(toytext_run(f, "Taxi-v3", episodes=1, max_steps=4)))
    assert tab.tables_visible()  # the person's choice outlives later defaults
    tab.tables_button.click()
    assert not tab.tables_visible()


def test_without_run_started_the_first_grid_frame_hides_the_tables(qtbot: Any,
                                                                  factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    assert tab.tables_visible()
    tab.on_batch(batch_of(toytext_run(f, "CliffWalking-v1", episodes=1, max_steps=3)))
    assert not tab.tables_visible() and tab.render_view.kind == "grid"
    assert tab.step_model.rowCount() == 3  # hidden tables still get every row


def test_the_stall_banner_shows_while_stalled_and_its_timer_stops(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    now = [100.0]
    tab = make_tab(qtbot, clock=lambda: now[0], stall_tick_ms=10)
    tab.show()
    tab.on_batch(batch_of([f.step(0, 0)]))
    assert tab.stall_banner.isHidden()
    now[0] = 104.0
    tab.on_stall_changed(True)
    assert tab.stalled and tab.stall_banner.isVisible() and tab.stall_timer.isActive()
    text = tab.stall_banner.text()
    assert "stalled" in text and "No events for 4 s" in text and "durable path keeps recording" in text
    assert tab.header_text("status") == "stalled"
    now[0] = 109.0
    qtbot.waitUntil(lambda: "No events for 9 s" in tab.stall_banner.text(), timeout=3000)
    tab.on_stall_changed(False)
    assert tab.stall_banner.isHidden() and not tab.stall_timer.isActive()
    assert tab.header_text("status") == "running"
    tab.on_stall_changed(True)
    tab.stop()
    assert not tab.stall_timer.isActive()
    tab.stop()  # idempotent
    tab.on_stall_changed(False)
    tab.on_stall_changed(True)
    tab.close()
    assert not tab.stall_timer.isActive()


def test_run_completed_shows_the_outcome_and_ends_any_stall(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.on_run_started(f.started())
    tab.on_stall_changed(True)
    tab.on_run_completed(f.completed("failed", exit_code=1, stderr_tail="Traceback...\nRuntimeError: boom\n",
                                     summary={"episodes": 3, "steps": 40}))
    assert tab.stall_banner.isHidden() and not tab.stall_timer.isActive()
    assert tab.header_text("status") == "failed (exit code 1)"
    assert "RuntimeError: boom" in tab.summary_label.text() and "3 episodes, 40 steps" in tab.summary_label.text()
    tab.on_stall_changed(True)  # a completed run never stalls
    assert tab.stall_banner.isHidden() and tab.header_text("status") == "failed (exit code 1)"


def test_a_run_that_ended_early_shows_its_progress_without_an_eta(qtbot: Any, factory: type[EventFactory]) -> None:
    for outcome in ("cancelled", "failed", "completed"):
        f = factory("run1", "agent1")
        tab = make_tab(qtbot)
        tab.on_run_started(f.started(config={"episodes": 3000}))
        tab.on_batch(batch_of([f.episode(i, 4) for i in range(5)]))
        assert tab.header_text("progress").startswith("5 / 3,000 (0%, ETA ")
        tab.on_run_completed(f.completed(outcome))
        assert tab.header_text("progress") == "5 / 3,000 (0%)", outcome
        tab.on_batch(batch_of([f.episode(5, 4)]))  # a late episode of the ended run: still no ETA
        assert tab.header_text("progress") == "6 / 3,000 (0%)", outcome


def test_steps_per_second_from_heartbeats_or_from_arrivals(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    now = [10.0]
    tab = make_tab(qtbot, clock=lambda: now[0])
    tab.on_batch(batch_of([f.step(0, i) for i in range(100)]))
    assert tab.steps_per_s is None and tab.header_text("steps_per_s") == "-"
    now[0] = 11.0
    tab.on_batch(batch_of([f.step(0, 100 + i) for i in range(250)]))
    assert tab.steps_per_s == 250.0 and tab.header_text("steps_per_s") == "250"
    tab.on_heartbeat(f.heartbeat(interval_s=1.0, stats={"steps_per_s": 1234.5, "steps_done": 350}))
    assert tab.steps_per_s == 1234.5 and tab.header_text("steps_per_s") == "1,234.5"


def test_events_of_another_stream_are_ignored(qtbot: Any, factory: type[EventFactory]) -> None:
    tab = make_tab(qtbot)
    other = factory("run2", "agent1")
    tab.on_run_started(other.started("Taxi-v3", render_kind="grid"))
    tab.on_batch(LiveBatch("run1", "agent2", steps=(other.step(0, 0),)))
    tab.on_run_completed(other.completed())
    assert tab.steps_seen == 0 and tab.tables_visible() and tab.header_text("status") == "waiting"
    assert tab.title() == "Agent-agent1-Online"


def test_a_backfilled_episode_takes_its_place_in_the_episode_table(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    events = f.episodes(5, 2)
    eps = [e for e in events if e.topic is Topic.EPISODE_FINALIZED]
    tab.on_batch(batch_of([eps[0], eps[1], eps[3], eps[4]], dropped_total=3))
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(eps[2],), backfilled=1, backfilled_total=1))
    model = tab.episode_model
    assert [model.index(r, 0).data() for r in range(model.rowCount())] == ["0", "1", "2", "3", "4"]
    assert [model.index(2, c).data() for c in range(4)] == ["2", "1", "2", "goal"]
    tab.on_batch(batch_of([f.episode(4, 7, total_reward=-1.5, outcome=None, terminated=False, truncated=True)]))
    assert model.rowCount() == 5 and [model.index(4, c).data() for c in range(4)] == ["4", "-1.5", "7", "truncated"]
    assert tab.episodes_seen == 6


def test_the_step_table_follows_the_newest_row_until_scrolled_up(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.show()
    qtbot.waitExposed(tab)
    bar = tab.step_view.verticalScrollBar()
    tab.on_batch(batch_of([f.step(0, i) for i in range(200)]))
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    bar.setValue(0)  # the person scrolls up to read
    max_200 = bar.maximum()
    tab.on_batch(batch_of([f.step(0, 200 + i) for i in range(200)]))
    qtbot.waitUntil(lambda: bar.maximum() > max_200)  # the view has laid out the new rows
    assert bar.value() == 0
    bar.setValue(bar.maximum())  # back at the bottom: follow again
    max_400 = bar.maximum()
    tab.on_batch(batch_of([f.step(0, 400 + i) for i in range(50)]))
    qtbot.waitUntil(lambda: bar.maximum() > max_400)
    view = tab.step_view
    assert bar.value() == bar.maximum() and view.rowAt(view.viewport().height() - 2) == 449


def tab_behind_another(qtbot: Any) -> tuple[Any, AgentOnlineTab, AgentOnlineTab]:
    """A shown QTabWidget holding a front tab (run0) and, behind it, the tab under test (run1)."""
    from qtpy.QtWidgets import QTabWidget

    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    front, back = AgentOnlineTab("run0", "agent1"), AgentOnlineTab("run1", "agent1")
    tabs.addTab(front, "front")
    tabs.addTab(back, "back")
    tabs.show()
    return tabs, front, back


def test_a_tab_behind_another_draws_its_charts_and_frame_when_shown(qtbot: Any, factory: type[EventFactory]) -> None:
    tabs, front, back = tab_behind_another(qtbot)
    f = factory("run1", "agent1")
    episodes = [f.episode(i, 4, total_reward=float(i)) for i in range(3)]
    steps = [e for e in toytext_run(f, episodes=1, max_steps=3) if e.topic is Topic.STEP_APPENDED]
    back.on_batch(LiveBatch("run1", "agent1", steps=tuple(steps), episodes=tuple(episodes), latest_step=steps[-1]))
    assert back.steps_seen == len(steps) and back.header_text("episodes_seen") == "3"  # counted at once
    assert not back.charts_built()  # a tab behind another builds no chart widgets, draws nothing
    assert back.render_view.grid_view.grid_state() is None
    tabs.setCurrentWidget(back)
    assert not back.charts_built()  # built at the event loop's next turn, not inside the switch
    qtbot.waitUntil(back.charts_built, timeout=5000)
    qtbot.waitUntil(lambda: back.curve_panel.curve_data("return")[1].tolist() == [0.0, 1.0, 2.0], timeout=5000)
    state = back.render_view.grid_view.grid_state()
    assert state is not None and list(state.agent) == steps[-1].payload["render_payload"]["agent"]
    front.stop()
    back.stop()


def test_a_tab_shown_and_covered_at_once_builds_no_charts(qtbot: Any, factory: type[EventFactory]) -> None:
    from qtpy.QtWidgets import QTabWidget

    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    front, back = AgentOnlineTab("run0", "agent1"), AgentOnlineTab("run1", "agent1")
    tabs.addTab(front, "front")
    tabs.show()
    qtbot.waitUntil(front.charts_built, timeout=5000)  # the shown tab builds its charts
    tabs.addTab(back, "back")
    tabs.setCurrentWidget(back)  # opened, then covered in the same turn of the event loop
    tabs.setCurrentWidget(front)
    f = factory("run1", "agent1")
    back.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(0, 4, total_reward=1.0),)))
    from qtpy.QtCore import QTimer

    later = QTimer()  # started after the build's zero timer: it fires after that one would have
    later.setSingleShot(True)
    with qtbot.waitSignal(later.timeout, timeout=5000):
        later.start(0)
    assert not back.charts_built() and back.header_text("episodes_seen") == "1"
    front.stop()
    back.stop()


def test_charts_redraw_at_most_once_per_interval_and_the_last_news_is_drawn(
        qtbot: Any, factory: type[EventFactory]) -> None:
    tab = AgentOnlineTab("run1", "agent1", chart_refresh_interval_ms=300)
    qtbot.addWidget(tab)
    tab.show()
    f = factory("run1", "agent1")
    panel = tab.curve_panel
    before = panel.refreshes
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(0, 4, total_reward=0.0),)))
    assert panel.refreshes == before  # not inside the batch's handling: at the event loop's next turn
    qtbot.waitUntil(lambda: panel.refreshes == before + 1, timeout=5000)
    drawn = panel.refreshes
    assert tab.curve_panel.curve_data("return")[1].tolist() == [0.0]  # the first news at once
    for i in range(1, 6):  # a burst within the interval: counted at once, drawn once at its end
        tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(i, 4, total_reward=float(i)),)))
    assert tab.header_text("episodes_seen") == "6" and tab.episode_model.rowCount() == 6  # the table at once
    assert tab.curve_panel.refreshes == drawn
    assert tab.curves.episode_count == 1 and tab.held() == 5  # the curves take them in at the refresh, in one go
    qtbot.waitUntil(lambda: tab.curve_panel.refreshes == drawn + 1, timeout=5000)  # (spread over turns: counted at its end)
    assert tab.curve_panel.curve_data("return")[1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    run_turns()
    assert tab.curve_panel.refreshes == drawn + 1
    tab.stop()


def test_a_tab_behind_another_sets_its_header_labels_only_when_shown(qtbot: Any, factory: type[EventFactory]) -> None:
    tabs, front, back = tab_behind_another(qtbot)
    f = factory("run1", "agent1")
    steps = tuple(f.step(0, i) for i in range(5))
    back.on_batch(LiveBatch("run1", "agent1", steps=steps, latest_step=steps[-1], dropped_total=2))
    assert back.header_text("steps_seen") == "5" and back.header_text("dropped") == "2"  # counted at once
    assert back.header.values["steps_seen"].text() != "5"  # the hidden label itself is not set
    tabs.setCurrentWidget(back)
    assert back.header.values["steps_seen"].text() == "5" and back.header.values["dropped"].text() == "2"
    front.stop()
    back.stop()


def test_header_labels_update_at_most_once_per_text_interval(qtbot: Any, factory: type[EventFactory]) -> None:
    tab = AgentOnlineTab("run1", "agent1", text_refresh_interval_ms=300)
    qtbot.addWidget(tab)
    tab.show()
    f = factory("run1", "agent1")
    label = tab.header.values["steps_seen"]

    def send(count: int) -> None:
        steps = tuple(f.step(0, i) for i in range(count))
        tab.on_batch(LiveBatch("run1", "agent1", steps=steps, latest_step=steps[-1]))

    send(5)
    assert tab.header_text("steps_seen") == "5"  # counted at once
    qtbot.waitUntil(lambda: label.text() == "5", timeout=5000)  # set at the event loop's next turn
    send(5)
    send(5)  # within the interval: read at once, shown once at its end
    assert tab.header_text("steps_seen") == "15" and label.text() == "5"
    qtbot.waitUntil(lambda: label.text() == "15", timeout=5000)
    tab.stop()


def test_a_tab_behind_another_only_counts_and_folds_its_rows_in_one_go(qtbot: Any, factory: type[EventFactory]) -> None:
    from qtpy.QtWidgets import QTabWidget

    now = [100.0]
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    front = AgentOnlineTab("run0", "agent1")
    back = AgentOnlineTab("run1", "agent1", max_table_rows=5, hidden_fold_interval_ms=1000, clock=lambda: now[0])
    tabs.addTab(front, "front")
    tabs.addTab(back, "back")
    tabs.show()
    f = factory("run1", "agent1")
    steps = [f.step(0, i) for i in range(40)]
    episodes = [f.episode(i, 4, total_reward=float(i)) for i in range(4)]

    def send(first: int, last: int, episode: int) -> None:
        part = tuple(steps[first:last])
        back.on_batch(LiveBatch("run1", "agent1", steps=part, episodes=(episodes[episode],), latest_step=part[-1]))

    send(0, 3, 0)  # the first batch folds, at the event loop's next turn
    assert back.held() == 3 + 1
    qtbot.waitUntil(lambda: back.held() == 0, timeout=5000)
    assert back.step_model.rowCount() == 3 and back.episode_model.rowCount() == 1 and back.held() == 0
    now[0] += 0.5
    send(3, 17, 1)  # within the interval: counted, held (beyond twice the table's bound: trimmed, counted)
    assert back.steps_seen == 17 and back.header_text("steps_seen") == "17" and back.header_text("episodes_seen") == "2"
    assert back.step_model.rowCount() == 3 and back.episode_model.rowCount() == 1 and back.curves.episode_count == 1
    assert back.held() == 14 + 1
    now[0] += 0.6
    send(17, 20, 2)  # the interval is over: everything held goes in, in order (at the next turn)
    qtbot.waitUntil(lambda: back.held() == 0, timeout=5000)
    assert back.held() == 0 and back.step_model.appended_total == 20 and back.step_model.rowCount() == 5
    assert [back.step_model.step_at(r).seq_id for r in range(5)] == [e.seq_id for e in steps[15:20]]
    assert [back.episode_model.row_at(r).episode_index for r in range(3)] == [0, 1, 2] and back.curves.episode_count == 3
    now[0] += 0.1
    send(20, 22, 3)
    assert back.held() == 3
    tabs.setCurrentWidget(back)  # shown: folded at once
    assert back.held() == 0 and back.step_model.step_at(4).seq_id == steps[21].seq_id
    assert back.episode_model.rowCount() == 4
    qtbot.waitUntil(lambda: back.charts_built() and back.curve_panel.curve_data("return")[1].tolist() == [0.0, 1.0, 2.0, 3.0],
                    timeout=5000)
    tabs.setCurrentWidget(front)
    now[0] += 0.1
    send(22, 25, 0)  # (a repeated episode: the table keeps one row for it)
    assert back.held() == 4
    back.on_run_completed(f.completed())  # the run's end folds what is held
    assert back.held() == 0 and back.step_model.appended_total == 25
    front.stop()
    back.stop()


def test_a_tab_behind_another_decodes_its_newest_frame_only_when_shown(qtbot: Any, factory: type[EventFactory]) -> None:
    from gym_gui.telemetry.step_payload import compact_step

    tabs, front, back = tab_behind_another(qtbot)
    f = factory("run1", "agent1")
    framed = [f.step(0, i, render_payload=frozenlake_grid(i)) for i in range(3)]
    steps = [TelemetryEvent(e.topic, e.run_id, e.agent_id, e.seq_id, e.ts_iso, compact_step(e.payload)) for e in framed]
    steps.append(f.step(0, 3, render_payload=None))  # the newest step has no frame: the one before is shown
    assert all(type(e.payload).__name__ == "StepPayload" for e in steps[:3])
    back.on_batch(LiveBatch("run1", "agent1", steps=tuple(steps[:3]), latest_step=steps[2]))
    back.on_batch(LiveBatch("run1", "agent1", steps=(steps[3],), latest_step=steps[3]))
    assert back.header_text("step") == "3" and back.render_view.grid_view.grid_state() is None
    assert not hasattr(steps[2].payload, "_render")  # not decoded while hidden
    tabs.setCurrentWidget(back)
    state = back.render_view.grid_view.grid_state()
    assert state is not None and list(state.agent) == steps[2].payload["render_payload"]["agent"]
    front.stop()
    back.stop()


def test_hidden_tables_hold_their_rows_until_shown(qtbot: Any, factory: type[EventFactory]) -> None:
    now = [100.0]
    tab = make_tab(qtbot, hidden_fold_interval_ms=1000, clock=lambda: now[0])
    tab.show()
    f = factory("run1", "agent1")
    tab.set_tables_visible(False)
    steps = [f.step(0, i) for i in range(6)]
    tab.on_batch(LiveBatch("run1", "agent1", steps=tuple(steps[:2]), latest_step=steps[1]))  # the first folds
    qtbot.waitUntil(lambda: tab.held() == 0, timeout=5000)  # (at the next turn)
    now[0] += 0.2
    tab.on_batch(LiveBatch("run1", "agent1", steps=tuple(steps[2:4]), episodes=(f.episode(0, 4),),
                           latest_step=steps[3]))
    assert tab.steps_seen == 4 and tab.header_text("steps_seen") == "4"  # counted at once
    assert tab.step_model.rowCount() == 2 and tab.episode_model.rowCount() == 0 and tab.held() == 3
    tab.set_tables_visible(True)  # shown: the rows held go in at once
    assert tab.step_model.rowCount() == 4 and tab.episode_model.rowCount() == 1
    tab.on_batch(LiveBatch("run1", "agent1", steps=tuple(steps[4:]), latest_step=steps[5]))
    assert [tab.step_model.step_at(r).seq_id for r in range(6)] == [e.seq_id for e in steps]
    tab.stop()


def test_a_refresh_folds_a_big_burst_of_episodes_a_chunk_per_turn_and_keeps_every_one(
        qtbot: Any, factory: type[EventFactory]) -> None:
    from gym_gui.ui.online_tab import CURVE_FOLD_CHUNK

    tab = AgentOnlineTab("run1", "agent1", chart_refresh_interval_ms=50)
    qtbot.addWidget(tab)
    tab.show()
    panel = tab.curve_panel
    f = factory("run1", "agent1")
    sizes: list[int] = []
    real = tab.curves.add_episode_events

    def counted(events: Any) -> int:
        events = list(events)
        sizes.append(len(events))
        return real(events)

    tab.curves.add_episode_events = counted  # type: ignore[method-assign]
    count = 2 * CURVE_FOLD_CHUNK + 10
    drawn = panel.refreshes
    tab.on_batch(LiveBatch("run1", "agent1", episodes=tuple(f.episode(i, 4, total_reward=float(i)) for i in range(count))))
    qtbot.waitUntil(lambda: panel.refreshes > drawn, timeout=5000)
    assert sizes == [CURVE_FOLD_CHUNK, CURVE_FOLD_CHUNK, 10]  # in order, a chunk per turn
    assert tab.held() == 0 and panel.curve_data("return")[1].tolist() == [float(i) for i in range(count)]
    tab.stop()


def test_a_big_hidden_fold_goes_in_chunks_a_turn_and_keeps_the_newest_rows_and_the_count(
        qtbot: Any, factory: type[EventFactory], monkeypatch: Any) -> None:
    from qtpy.QtWidgets import QTabWidget

    import gym_gui.ui.online_tab as online_tab

    monkeypatch.setattr(online_tab, "FOLD_CHUNK_ROWS", 4)
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    front = AgentOnlineTab("run0", "agent1")
    back = AgentOnlineTab("run1", "agent1", max_table_rows=10, hidden_fold_interval_ms=0)
    tabs.addTab(front, "front")
    tabs.addTab(back, "back")
    tabs.show()
    f = factory("run1", "agent1")
    steps = tuple(f.step(0, i) for i in range(19))
    sizes: list[int] = []
    real = back.step_model.append_rows

    def counted(rows: Any) -> None:
        sizes.append(len(rows))
        real(rows)

    back.step_model.append_rows = counted  # type: ignore[method-assign]
    back.on_batch(LiveBatch("run1", "agent1", steps=steps, latest_step=steps[-1]))
    assert back.held() == 19 and sizes == []  # not in the tick: a turn of its own
    qtbot.waitUntil(lambda: back.held() == 0, timeout=5000)
    assert sizes == [4, 4, 2]  # the 9 oldest counted and let go (beyond the bound), then 4 rows a turn, in order
    assert back.step_model.appended_total == 19 and back.step_model.rowCount() == 10
    assert [back.step_model.step_at(r).seq_id for r in range(10)] == [e.seq_id for e in steps[9:]]
    front.stop()
    back.stop()


def test_a_hidden_fold_puts_its_episodes_in_chunks_a_turn_in_order_and_loses_none(
        qtbot: Any, factory: type[EventFactory], monkeypatch: Any) -> None:
    from qtpy.QtWidgets import QTabWidget

    import gym_gui.ui.online_tab as online_tab

    monkeypatch.setattr(online_tab, "FOLD_CHUNK_ROWS", 4)
    monkeypatch.setattr(online_tab, "CURVE_FOLD_CHUNK", 3)
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    front = AgentOnlineTab("run0", "agent1")
    back = AgentOnlineTab("run1", "agent1", hidden_fold_interval_ms=0)
    tabs.addTab(front, "front")
    tabs.addTab(back, "back")
    tabs.show()
    f = factory("run1", "agent1")
    episodes = tuple(f.episode(i, 4, total_reward=float(i)) for i in range(10))
    table_sizes: list[int] = []
    curve_sizes: list[int] = []
    real_table, real_curves = back.episode_model.add_events, back.curves.add_episode_events

    def table(events: Any) -> None:
        table_sizes.append(len(list(events)))
        real_table(events)

    def curves(events: Any) -> None:
        curve_sizes.append(len(events))
        real_curves(events)

    back.episode_model.add_events = table  # type: ignore[method-assign]
    back.curves.add_episode_events = curves  # type: ignore[method-assign]
    back.on_batch(LiveBatch("run1", "agent1", episodes=episodes))
    assert table_sizes == [] and curve_sizes == []  # not in the tick: turns of their own
    qtbot.waitUntil(lambda: back.held() == 0 and back.curves.episode_count == 10, timeout=5000)
    assert table_sizes == [4, 4, 2]  # one piece a turn, in order
    assert curve_sizes == [3, 3, 3, 1]
    assert back.episode_model.rowCount() == 10
    assert list(back.curves.column("index")) == list(range(10))
    front.stop()
    back.stop()
