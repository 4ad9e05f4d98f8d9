"""A reader for the Qt-free view tests: keeps submitted queries until the test runs them (one thread)."""

from __future__ import annotations

from typing import Any, Callable


class DeferredReader:
    """``submit`` as the StoreReader's; ``run()`` runs what was submitted on the store, in order, and calls
    back (as the StoreReader would on a reader thread, then on the owner's thread). ``stopped`` refuses."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.jobs: list[tuple[Callable[[Any], Any], Callable[[Any], None], Callable[[BaseException], None] | None]] = []
        self.stopped = False

    def submit(self, query: Callable[[Any], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException], None] | None = None) -> bool:
        if self.stopped:
            return False
        self.jobs.append((query, on_done, on_error))
        return True

    def run(self) -> int:
        """Run every job submitted so far (and those their callbacks submit); returns how many ran."""
        ran = 0
        while self.jobs:
            jobs, self.jobs = self.jobs, []
            for query, on_done, on_error in jobs:
                ran += 1
                try:
                    result = query(self.store)
                except Exception as exc:  # noqa: BLE001 (handed to the caller's on_error, as the StoreReader does)
                    if on_error is not None:
                        on_error(exc)
                    continue
                on_done(result)
        return ran
