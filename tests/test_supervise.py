"""Supervised stages: a loop that raises is reported, its restart hook runs, and it runs again."""

from __future__ import annotations

import threading

from foundation.supervise import StageState, Supervisor


def test_a_stage_that_raises_is_reported_and_restarted() -> None:
    seen: list[tuple[str, int]] = []
    hooks: list[str] = []
    runs = iter([ValueError("boom"), RecursionError("deep"), None])

    def loop() -> None:
        err = next(runs)
        if err:
            raise err

    supervisor = Supervisor(on_change=lambda s: seen.append((s.state.value, s.restarts)), backoff_s=0.0)
    supervisor.spawn("demo", loop, on_restart=lambda: hooks.append("reconnect")).join(5)
    assert seen == [("running", 0), ("failed", 0), ("running", 1), ("failed", 1), ("running", 2), ("stopped", 2)]
    assert hooks == ["reconnect", "reconnect"]
    status = supervisor.status("demo")
    assert status.state is StageState.STOPPED and status.last_error == "RecursionError: deep"


def test_a_failed_stage_is_failing_until_its_restart() -> None:
    release = threading.Event()
    first = [True]

    def loop() -> None:
        if first[0]:
            first[0] = False
            raise OSError("disk")
        release.wait(5)

    supervisor = Supervisor(backoff_s=0.2)
    thread = supervisor.spawn("slow", loop)
    deadline = threading.Event()
    for _ in range(100):
        if supervisor.failing():
            break
        deadline.wait(0.01)
    assert [s.name for s in supervisor.failing()] == ["slow"]
    for _ in range(200):
        if not supervisor.failing():
            break
        deadline.wait(0.01)
    assert supervisor.failing() == [] and supervisor.status("slow").restarts == 1
    release.set()
    thread.join(5)


def test_stop_ends_restarts() -> None:
    supervisor = Supervisor(backoff_s=30.0)

    def loop() -> None:
        raise RuntimeError("always")

    thread = supervisor.spawn("doomed", loop)
    for _ in range(100):
        if supervisor.failing():
            break
        threading.Event().wait(0.01)
    supervisor.stop()
    thread.join(5)
    assert not thread.is_alive() and supervisor.status("doomed").state is StageState.FAILED
