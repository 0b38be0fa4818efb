"""Receiving MQTT in a process of its own: paho's network work no longer shares the GIL with ingest.

Why: profiled on 2 cores (docs/BENCHMARKS.md), paho's receive thread took about 55 % of the GIL on
single-reading messages, so decode, store and rules could never have more than the rest. Here a
child process (ingest/receiver_child.py: paho, msgspec and the standard library only) runs the paho client
of ingest's persistent QoS 1 session; the parent (`ReceiverProcess`, driven by `ingest.service.IngestService`) gets the raw
``(topic, payload, mid, qos)`` of many messages in one frame and tells the child which to
acknowledge once they are stored and evaluated. The guarantee of ingest/service.py is unchanged:
**nothing is acknowledged before it is stored**, because only the parent decides what to ack.

Wire: both directions carry frames, a 4-byte big-endian length and a msgpack array; the first
element names the frame.

child → parent
    ``["g", gen]`` connection ``gen`` accepted (CONNACK): its messages, which a resumed session sends before
    the SUBACK, are acknowledged from now on; ``["c", gen, session_present]`` connected and subscribed; ``["d", reason]``
    disconnected; ``["f", reason]`` connect or subscribe refused; ``["m", [[topic, payload, mid,
    qos, gen], ...]]`` messages (topic as raw bytes: paho's ``msg.topic`` raises on invalid UTF-8).
parent → child
    ``["a", gen, [mid, ...], done]`` acknowledge these QoS 1 messages of connection ``gen`` (void
    for any other connection: message ids are per connection) and count ``done`` messages as
    finished; ``["p", topic, payload, qos, retain]`` publish (dead letters); ``["r"]`` drop the
    connection so the broker redelivers all that is unacknowledged; ``["s"]`` disconnect and exit.

Backpressure: the child holds at most ``window`` messages received and not yet finished by the
parent; beyond that paho's thread waits, TCP fills, and the broker keeps the backlog.
Failure: the child exits when its stdin closes (the parent died: nothing more is acknowledged and
the broker redelivers to the next one); the parent sees the child's end as end-of-file and raises
`ReceiverDied`, which its `Supervisor` reports (``/healthz`` 503, a ``_system`` alarm) and answers
by starting a new child.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import msgspec
import structlog

from foundation.config import MqttSettings
from ingest.receiver_child import read_frame, write_frame

UNSENT_LIMIT = 10_000
"""Publishes (dead letters) held while no receiver runs; beyond this the oldest are dropped and counted."""

log = structlog.get_logger("ingest")


class ReceiverDied(RuntimeError):
    """The receiver process ended while ingest was running (its supervisor starts another)."""


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as ingest's stages see it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection delivered it: acks for an older connection are void


# --------------------------------------------------------------------------------------------- parent

class ReceiverProcess:
    """The parent's handle on the receiver child: start it, read its frames, send acks and publishes.

    ``deliver(messages)`` gets each frame's messages as `Received` (it may block: that is the
    backpressure); ``on_connected(bool)`` hears the connection come and go. `run` is a stage loop
    for a `Supervisor`: it starts a child and returns only when `stop` was asked; a child that ends
    otherwise raises `ReceiverDied`.
    """

    def __init__(self, settings: MqttSettings, client_id: str, window: int, chunk: int,
                 deliver: Callable[[list[Received]], None], on_connected: Callable[[bool], None]) -> None:
        self._settings, self._client_id, self._window, self._chunk = settings, client_id, window, chunk
        self._deliver = deliver
        self._on_connected = on_connected
        self._proc: subprocess.Popen | None = None
        self._write_lock = threading.Lock()
        self._incarnation = 0        # which child: its messages' generations carry it in their high bits
        self.generation = 0          # the current connection: incarnation << 32 | the child's connection number
        self._stopping = threading.Event()
        self._unsent: collections.deque[list] = collections.deque()
        self.unsent_dropped = 0

    @property
    def pid(self) -> int | None:
        """The current child's process id (tests kill it)."""
        return self._proc.pid if self._proc is not None else None

    def _spawn(self) -> subprocess.Popen:
        root = str(Path(__file__).resolve().parent.parent)
        # Two malloc arenas, not 8 per core: payloads are allocated by paho's thread and freed by the forwarder,
        # and glibc's per-thread arenas would each keep their high-water mark.
        env = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}
        child = Path(__file__).resolve().with_name("receiver_child.py")
        proc = subprocess.Popen([sys.executable, str(child)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, cwd=root, close_fds=True)
        mqtt = self._settings.model_dump(mode="python")
        if self._settings.password is not None:
            mqtt["password"] = self._settings.password.get_secret_value()
        mqtt = msgspec.to_builtins(mqtt, enc_hook=str)
        with self._write_lock:
            self._proc = proc
            self._incarnation += 1
            write_frame(proc.stdin, ["config", mqtt, self._client_id, self._window, self._chunk])
        return proc

    def run(self) -> None:
        """Stage loop: start a child and pass its frames on until stopped; `ReceiverDied` if it ends."""
        if self._stopping.is_set():
            return
        proc = self._spawn()
        incarnation = self._incarnation
        log.info("receiver_started", pid=proc.pid, incarnation=incarnation)
        high = incarnation << 32
        try:
            while True:
                frame = read_frame(proc.stdout)
                if frame is None:
                    break
                kind = frame[0]
                if kind == "m":
                    self._deliver([Received(topic.decode("utf-8", "replace"), payload, mid, qos, high | gen)
                                   for topic, payload, mid, qos, gen in frame[1]])
                elif kind == "g":
                    self.generation = high | frame[1]
                elif kind == "c":
                    self.generation = high | frame[1]
                    log.info("broker_connected", host=self._settings.host, port=self._settings.port,
                             session_present=frame[2], receiver_pid=proc.pid)
                    self._flush_unsent()
                    self._on_connected(True)
                elif kind == "d":
                    self._on_connected(False)
                    if not self._stopping.is_set():
                        log.warning("broker_disconnected", reason=frame[1])
                elif kind == "f":
                    log.error("broker_connect_failed", reason=frame[1])
        finally:
            self._on_connected(False)
            proc.stdout.close()
        code = proc.wait()
        if not self._stopping.is_set():
            log.error("receiver_died", pid=proc.pid, exit_code=code)
            raise ReceiverDied(f"the MQTT receiver process {proc.pid} exited with code {code}; "
                               "unacknowledged messages are redelivered to its successor")

    def _write(self, frame: list) -> bool:
        """Send a frame to the current child; False when there is none (it died or is starting)."""
        with self._write_lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return False
            try:
                write_frame(proc.stdin, frame)
                return True
            except (BrokenPipeError, ValueError, OSError):
                return False

    def ack(self, messages: list[Received]) -> None:
        """Acknowledge the QoS 1 messages of the current connection and free the window for all of this child's.

        Messages of an older connection are not acknowledged (their ids mean nothing now; the broker
        redelivers them). With the child gone nothing is sent: its successor's window is fresh.
        """
        current, incarnation = self.generation, self._incarnation
        mids = [m.mid for m in messages if m.qos > 0 and m.generation == current]
        done = sum(1 for m in messages if m.generation >> 32 == incarnation)
        if mids or done:
            self._write(["a", current & 0xFFFFFFFF, mids, done])

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish through the child's connection; held (bounded) while no child runs."""
        frame = ["p", topic, payload, qos, retain]
        if not self._write(frame):
            self._hold(frame)

    def _hold(self, frame: list) -> None:
        self._unsent.append(frame)
        if len(self._unsent) > UNSENT_LIMIT:
            self._unsent.popleft()
            self.unsent_dropped += 1
            log.error("publish_dropped_no_receiver", dropped_total=self.unsent_dropped, held=UNSENT_LIMIT)

    def _flush_unsent(self) -> None:
        while self._unsent:
            frame = self._unsent.popleft()
            if not self._write(frame):
                self._unsent.appendleft(frame)
                return

    def redeliver(self) -> None:
        """Have the child drop its connection: the broker redelivers every unacknowledged message."""
        self._write(["r"])

    def alive(self) -> bool:
        """Whether a child process is running now."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Tell the child to disconnect and exit; kill it if it does not within ``timeout``."""
        self._stopping.set()
        proc = self._proc
        if proc is None:
            return
        self._write(["s"])
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("receiver_killed", pid=proc.pid, reason=f"no exit within {timeout} s of stop")
            proc.kill()
            proc.wait()
        with self._write_lock:
            try:
                proc.stdin.close()
            except OSError:
                pass

