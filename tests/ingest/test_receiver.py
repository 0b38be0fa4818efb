"""The MQTT receiver process (ingest/receiver.py): killed mid-stream it is seen and replaced, nothing is lost;
its parent's death ends it; acknowledgements follow the connection they belong to."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from foundation.supervise import StageState
from ingest.receiver import Received, ReceiverProcess
from liaowang.pipeline import Pipeline

from ..conftest import config_for, wait_until
from ..test_no_loss import TOTAL, stream


@pytest.mark.slow
def test_kill_9_of_the_receiver_mid_stream_is_reported_restarted_and_loses_nothing(broker, tmp_path, demo_config):
    """kill -9 of the receiver child: the ingest-receive stage fails (health says so), a new child takes the
    session over, the broker redelivers what was unacknowledged, and every reading is stored exactly once."""
    _, port = broker
    pipeline = Pipeline(config_for(demo_config, port), tmp_path / "data")
    pipeline.start()
    done = threading.Event()
    seen_failed = threading.Event()
    watch = pipeline.supervisor._on_change  # noqa: SLF001 - listen beside the pipeline's own listener

    def listener(status):
        if status.name == "ingest-receive" and status.state is StageState.FAILED:
            seen_failed.set()
        if watch is not None:
            watch(status)

    pipeline.supervisor.set_listener(listener)
    try:
        assert pipeline.ingest.wait_connected(15)
        first = pipeline.ingest.receiver_pid
        publisher = threading.Thread(target=stream, args=(port, done))
        publisher.start()
        wait_until(lambda: pipeline.readings.count() >= 3000, timeout=120)
        os.kill(first, signal.SIGKILL)
        assert seen_failed.wait(60), "the receiver's death was not reported"  # generous: CI may be loaded
        assert wait_until(lambda: pipeline.ingest.receiver_pid not in (None, first) and pipeline.ingest.connected,
                          timeout=30)
        publisher.join(timeout=240)
        assert done.is_set()
        wait_until(lambda: pipeline.readings.count() >= TOTAL, timeout=180, interval=0.5)
        time.sleep(1)  # nothing more may arrive: a duplicate would be an extra row or an error
        assert pipeline.readings.count() == TOTAL
        status = pipeline.supervisor.status("ingest-receive")
        assert status.state is StageState.RUNNING and status.restarts == 1 and "exited" in status.last_error
    finally:
        pipeline.stop()


def test_the_receiver_exits_when_its_parent_is_gone(broker, demo_config):
    """A parent killed with -9 closes the child's stdin: the child exits at once, acknowledging nothing more
    (no orphan holding the session)."""
    _, port = broker
    settings_ = config_for(demo_config, port).settings
    connected = threading.Event()
    receiver = ReceiverProcess(settings_.mqtt, "receiver-orphan-test", 100, 10, lambda messages: None,
                               lambda up: up and connected.set())
    runner = threading.Thread(target=lambda: _run_quietly(receiver), daemon=True)
    runner.start()
    assert connected.wait(15)
    proc = receiver._proc  # noqa: SLF001
    proc.stdin.close()  # what the kernel does when the parent dies
    assert proc.wait(10) == 0


def _run_quietly(receiver: ReceiverProcess) -> None:
    try:
        receiver.run()
    except Exception:  # ReceiverDied: expected here, the test ended the child on purpose
        pass


class _Capture(ReceiverProcess):
    """Frames the parent would send, captured instead of written to a child."""

    def __init__(self) -> None:
        super().__init__(None, "x", 10, 10, lambda m: None, lambda up: None)  # type: ignore[arg-type]
        self.frames: list[list] = []

    def _write(self, frame: list) -> bool:
        self.frames.append(frame)
        return True


messages = st.lists(st.tuples(st.integers(1, 65535), st.sampled_from([0, 1]), st.integers(1, 3), st.integers(1, 4)),
                    max_size=50)


@settings(max_examples=300, deadline=None)
@given(messages, st.integers(1, 3), st.integers(1, 4))
def test_acks_name_only_the_current_connection_and_free_only_this_child_s_window(batch, incarnation, connection):
    """Against a reference model: the ack frame names exactly the QoS 1 message ids of the current connection
    (ids of another connection, or another child, mean nothing) and frees the window by the messages this
    child delivered, whatever their connection."""
    receiver = _Capture()
    receiver._incarnation = incarnation  # noqa: SLF001
    receiver.generation = incarnation << 32 | connection
    received = [Received("t", b"", mid, qos, inc << 32 | conn) for mid, qos, inc, conn in batch]
    receiver.ack(received)
    want_mids = [mid for mid, qos, inc, conn in batch if qos and (inc, conn) == (incarnation, connection)]
    want_done = sum(1 for _, _, inc, _ in batch if inc == incarnation)
    if not want_mids and not want_done:
        assert receiver.frames == []
    else:
        assert receiver.frames == [["a", connection, want_mids, want_done]]


def test_the_thread_receiver_still_stores_and_acknowledges(broker, tmp_path, demo_config):
    """``ingest.receiver: thread`` (paho in the pipeline's own process) keeps working: no child process,
    and readings published at QoS 1 are stored."""
    from ..conftest import publisher

    _, port = broker
    base = config_for(demo_config, port)
    ingest = base.settings.ingest.model_copy(update={"receiver": "thread"})
    config = base.model_copy(update={"settings": base.settings.model_copy(update={"ingest": ingest})})
    pipeline = Pipeline(config, tmp_path / "data")
    pipeline.start()
    try:
        assert pipeline.ingest.wait_connected(15) and pipeline.ingest.receiver_pid is None
        pub = publisher("127.0.0.1", port)
        now = time.time()
        for i in range(20):
            pub.publish("liaowang/v1/readings/LC-LUXI/LC-LUXI-GD-01",
                        b'{"ts": %f, "value": 1.0}' % (now - 100 + i), qos=1).wait_for_publish(5)
        assert wait_until(lambda: pipeline.readings.count() == 20, timeout=20)
        pub.disconnect()
    finally:
        pipeline.stop()
