"""Supervised stage threads: a stage that dies is seen, reported and restarted, never silently gone.

A Python thread that raises simply ends; its queue stops draining while the HTTP server and
``/healthz`` go on answering (TRAPS.md). Every long-running stage of Liaowang (ingest's decode and
store stages, the status ticker, notification delivery) runs its loop under a `Supervisor`:

* the loop returning normally means the stage stopped on purpose (``STOPPED``);
* the loop raising marks the stage ``FAILED`` with the reason, tells the listener (the pipeline
  raises a ``_system`` alarm and ``/healthz`` turns 503), waits a back-off, calls the stage's
  ``on_restart`` hook (ingest reconnects so the broker redelivers what was not acknowledged) and
  runs the loop again (``RUNNING``, ``restarts`` counted).

A leaf module: it imports nothing of Liaowang's, so every stage may use it.
"""

from __future__ import annotations

import enum
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Callable

import structlog

log = structlog.get_logger("supervisor")


class StageState(enum.Enum):
    """Where a supervised stage is."""

    RUNNING = "running"
    FAILED = "failed"      # its loop raised; it is waiting to be restarted
    STOPPED = "stopped"    # its loop returned (an orderly stop)


@dataclass(frozen=True, slots=True)
class StageStatus:
    """What health reports about one stage."""

    name: str
    state: StageState
    restarts: int = 0
    last_error: str | None = None
    failed_at: float | None = None

    def to_json(self) -> dict[str, object]:
        return {"state": self.state.value, "restarts": self.restarts, "last_error": self.last_error}


StageListener = Callable[[StageStatus], None]


class Supervisor:
    """Starts stage loops on daemon threads and restarts any that raises.

    Example (tests/test_supervise.py runs it)::

        supervisor = Supervisor(on_change=report, backoff_s=1.0)
        supervisor.spawn("ingest-store", store_loop, on_restart=reconnect)
        supervisor.failing()   # [StageStatus(name="ingest-store", state=FAILED, last_error="...")] while down
    """

    def __init__(self, on_change: StageListener | None = None, backoff_s: float = 1.0,
                 backoff_max_s: float = 30.0) -> None:
        self._on_change = on_change
        self._backoff = backoff_s
        self._backoff_max = backoff_max_s
        self._status: dict[str, StageStatus] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def spawn(self, name: str, loop: Callable[[], None], on_restart: Callable[[], None] | None = None
              ) -> threading.Thread:
        """Run ``loop`` on a daemon thread called ``name`` under supervision; return the thread."""
        self._set(StageStatus(name, StageState.RUNNING))
        thread = threading.Thread(target=self._run, args=(name, loop, on_restart), name=name, daemon=True)
        thread.start()
        return thread

    def set_listener(self, on_change: StageListener) -> None:
        """Tell ``on_change`` about every later change of any stage."""
        self._on_change = on_change

    def stop(self) -> None:
        """No more restarts (stages stop by their own signals)."""
        self._stop.set()

    def status(self, name: str) -> StageStatus:
        """The status of one stage."""
        with self._lock:
            return self._status[name]

    def statuses(self) -> dict[str, StageStatus]:
        """Every stage's status."""
        with self._lock:
            return dict(self._status)

    def failing(self) -> list[StageStatus]:
        """The stages not running that should be (failed, waiting for their restart)."""
        return [s for s in self.statuses().values() if s.state is StageState.FAILED]

    def _run(self, name: str, loop: Callable[[], None], on_restart: Callable[[], None] | None) -> None:
        delay = self._backoff
        while True:
            try:
                loop()
            except BaseException as err:  # noqa: BLE001 - a stage must never end unseen, whatever it raised
                reason = f"{type(err).__name__}: {str(err)[:300]}"
                current = self.status(name)
                self._set(replace(current, state=StageState.FAILED, last_error=reason, failed_at=time.time()))
                _log_quietly("error", "stage_failed", stage=name, error=reason,
                             traceback="".join(traceback.format_exception(err))[-4000:])
                if self._stop.wait(delay):
                    return
                delay = min(max(delay * 2, 0.1), self._backoff_max)
                if on_restart is not None:
                    try:
                        on_restart()
                    except Exception as hook_err:  # the restart itself goes on; the hook's failure is reported
                        _log_quietly("error", "stage_restart_hook_failed", stage=name, error=str(hook_err))
                self._set(replace(self.status(name), state=StageState.RUNNING, restarts=current.restarts + 1))
                _log_quietly("warning", "stage_restarted", stage=name, restarts=current.restarts + 1)
                continue
            self._set(replace(self.status(name), state=StageState.STOPPED))
            return

    def _set(self, status: StageStatus) -> None:
        with self._lock:
            self._status[status.name] = status
        if self._on_change is not None:
            try:
                self._on_change(status)
            except Exception as err:  # the listener must not kill the stage it reports on
                _log_quietly("error", "stage_listener_failed", stage=status.name, error=str(err))


def _log_quietly(level: str, event: str, **fields: object) -> None:
    """Log, but never let a broken log sink (a closed stream) end the supervisor that reports on stages."""
    try:
        getattr(log, level)(event, **fields)
    except Exception:  # noqa: BLE001 - the status above already says what happened; health shows it
        pass
