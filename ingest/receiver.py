"""Receiving MQTT in a process of its own: paho's network work no longer shares the GIL with ingest.

Why: profiled on 2 cores (docs/BENCHMARKS.md), paho's receive thread took about 55 % of the GIL on
single-reading messages, so decode, store and rules could never have more than the rest. Here a
child process (``python ingest/receiver.py``, so it imports only paho and the settings model) runs the paho client of ingest's persistent QoS 1
session; the parent (`ReceiverProcess`, driven by `ingest.service.IngestService`) gets the raw
``(topic, payload, mid, qos)`` of many messages in one frame and tells the child which to
acknowledge once they are stored and evaluated. The guarantee of ingest/service.py is unchanged:
**nothing is acknowledged before it is stored**, because only the parent decides what to ack.

Wire: both directions carry frames, a 4-byte big-endian length and a msgpack array; the first
element names the frame.

child → parent
    ``["c", gen, session_present]`` connected and subscribed (connection ``gen``); ``["d", reason]``
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
from typing import IO, Any, Callable

if __name__ == "__main__":  # the child, run as a script: import from the project root, not from ingest/ (and
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not ingest/__init__: numpy, SQLite… stay out)

import msgspec
import structlog

from foundation.config import MqttSettings

READINGS_FILTER = "liaowang/v1/readings/#"
STATUS_FILTER = "liaowang/v1/status/+"
UNSENT_LIMIT = 10_000
"""Publishes (dead letters) held while no receiver runs; beyond this the oldest are dropped and counted."""

log = structlog.get_logger("ingest")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


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


def write_frame(out: IO[bytes], frame: list) -> None:
    """Write one length-prefixed msgpack frame and flush (callers serialise writers)."""
    body = _encode(frame)
    out.write(len(body).to_bytes(4, "big") + body)
    out.flush()


def read_frame(stream: IO[bytes]) -> list | None:
    """Read one frame; None at end of file (the other side is gone)."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    if len(body) < size:
        return None
    return _decode(body)


# ---------------------------------------------------------------------------------------------- child

class _Child:
    """The child's side: one paho client, a sender thread, and the parent's commands on stdin."""

    def __init__(self, settings: MqttSettings, client_id: str, window: int, chunk: int, out: IO[bytes]) -> None:
        from foundation.mqttclient import make_client

        self._settings, self._window, self._chunk, self._out = settings, window, chunk, out
        self._out_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: list[list[Any]] = []
        self._outstanding = 0      # received, not yet finished by the parent
        self._gen = 0              # bumped on connect and on disconnect: acks of another connection are void
        self._gen_lock = threading.Lock()
        self._stopping = False
        self._client = make_client(settings, client_id, persistent=True, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        # paho walks its topic-filter trie for every message even with no filtered callbacks (3-10 % of its
        # time, BENCHMARKS.md); ingest registers none, so the message goes straight to on_message.
        self._client._handle_on_message = self._on_raw  # noqa: SLF001

    def _send(self, frame: list) -> None:
        with self._out_lock:
            write_frame(self._out, frame)

    def run(self, commands: IO[bytes]) -> None:
        """Connect, forward messages, obey commands until told to stop or stdin closes."""
        threading.Thread(target=self._forward, name="receiver-forward", daemon=True).start()
        self._client.connect_async(self._settings.host, self._settings.port, self._settings.keepalive_s)
        self._client.loop_start()
        while True:
            frame = read_frame(commands)
            if frame is None:  # the parent is gone: exit at once, acknowledging nothing more
                os._exit(0)
            kind = frame[0]
            if kind == "a":
                self._ack(frame[1], frame[2], frame[3])
            elif kind == "p":
                self._client.publish(frame[1], frame[2], qos=frame[3], retain=frame[4])
            elif kind == "r":
                self._drop_connection()
            elif kind == "s":
                self._stopping = True
                self._client.disconnect()
                self._client.loop_stop()
                with self._cond:
                    self._cond.notify_all()
                return

    def _ack(self, gen: int, mids: list[int], done: int) -> None:
        with self._gen_lock:  # a connection that changed meanwhile makes these ids meaningless
            if gen == self._gen:
                for mid in mids:
                    self._client.ack(mid, 1)
        with self._cond:
            self._outstanding -= done
            self._cond.notify_all()

    def _drop_connection(self) -> None:
        import socket

        sock = self._client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _forward(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._pending:
                    cond.wait()
                chunk, self._pending = self._pending[:self._chunk], self._pending[self._chunk:]
            self._send(["m", chunk])

    # paho callbacks (its network thread)

    def _on_connect(self, client: Any, userdata: object, flags: Any, reason: Any, props: object) -> None:
        if getattr(reason, "is_failure", False):
            self._send(["f", f"connect refused: {reason}"])
            return
        with self._gen_lock:
            self._gen += 1
        self._session_present = bool(getattr(flags, "session_present", False))
        client.subscribe([(READINGS_FILTER, 1), (STATUS_FILTER, 1)])

    def _on_subscribe(self, client: Any, userdata: object, mid: int, reasons: list, props: object) -> None:
        failed = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if failed:
            self._send(["f", f"subscription refused: {failed}"])
            return
        self._send(["c", self._gen, self._session_present])

    def _on_disconnect(self, client: Any, userdata: object, flags: object, reason: Any, props: object) -> None:
        with self._gen_lock:
            self._gen += 1
        if not self._stopping:
            self._send(["d", str(reason)])

    def _on_raw(self, message: Any) -> None:
        self._on_message(self._client, None, message)

    def _on_message(self, client: Any, userdata: object, msg: Any) -> None:
        cond = self._cond
        with cond:
            # Full window: wait here, in paho's thread, so TCP fills and the broker holds the backlog.
            while self._outstanding >= self._window and not self._stopping:
                cond.wait(0.5)
            self._outstanding += 1
            self._pending.append([msg._topic, msg.payload, msg.mid, msg.qos, self._gen])  # noqa: SLF001 - raw bytes
            cond.notify()


def _child_main() -> None:
    """Entry of the child process: the first frame on stdin is the configuration."""
    commands, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed by a library must not corrupt the frame stream
    config = read_frame(commands)
    if config is None:
        return
    settings = MqttSettings.model_validate(config[1])
    _Child(settings, config[2], config[3], config[4], out).run(commands)


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
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
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


if __name__ == "__main__":
    _child_main()
