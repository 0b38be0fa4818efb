"""The receiver child process (run as ``python ingest/receiver_child.py`` by `ingest.receiver.ReceiverProcess`).

It imports only the standard library, paho, msgspec and foundation.malloc (itself standard
library only; about 25 MB resident, against 66 MB with Liaowang's settings models and numpy),
and holds nothing but messages in flight. The wire and the protocol are described in
ingest/receiver.py.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import IO, Any

if __name__ == "__main__":  # run as a script: ingest/ itself is sys.path[0], and its modules must shadow nothing
    sys.path.pop(0)
    # foundation.malloc from this source tree, whether or not the package is installed (last: shadows nothing)
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec
import paho.mqtt.client as mqtt

from foundation.malloc import TRIM_AVAILABLE, release_freed_heap

READINGS_FILTER = "liaowang/v1/readings/#"
STATUS_FILTER = "liaowang/v1/status/+"
IDLE_TRIM_AFTER_S = 1.0  # no message for this long after some: the burst is over, its buffers can go back

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


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


class BulkReader:
    """Feeds paho's packet parser from a 64 KB buffer: one ``recv`` for many packets, not three a packet.

    Why: paho 2.x reads every packet with at least three ``recv`` calls (the command byte, each
    remaining-length byte, the body) and returns to ``select`` after each one (``loop_read`` reads
    a single packet unless QoS 2 messages are in flight). On single-reading messages those system
    calls were most of the receiver's cost: a stock paho subscriber drained 32,000–33,000 msg/s,
    the same subscriber reading in bulk 68,000–70,000 msg/s (same broker and feed, interleaved;
    docs/BENCHMARKS.md). Parsing is unchanged: paho's own ``_packet_read`` reads the same bytes,
    only from the buffer. ``loop_read`` goes on parsing while buffered bytes remain, so ``select``
    is entered only when the buffer is empty and never sleeps on data already read. A new socket
    (a reconnect) discards what was buffered from the old one.
    """

    CHUNK = 65536

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client
        self._raw_recv = client._sock_recv  # noqa: SLF001 - paho's own read (TLS and websockets handled there)
        self._packet_read = client._packet_read  # noqa: SLF001
        self._sock: object = None
        self._data = b""
        self._pos = 0

    def install(self) -> None:
        """Route the client's socket reads and its read loop through this buffer."""
        self._client._sock_recv = self.recv  # noqa: SLF001
        self._client.loop_read = self.loop_read

    def buffered(self) -> int:
        """Bytes read from the socket and not yet handed to paho."""
        return len(self._data) - self._pos

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: from the buffer, else one bulk read (raises as paho's read does: no data, closed)."""
        sock = self._client._sock  # noqa: SLF001
        if sock is not self._sock:
            self._sock, self._data, self._pos = sock, b"", 0
        if self._pos >= len(self._data):
            data = self._raw_recv(self.CHUNK)
            if not data:
                return data  # end of stream: paho sees the connection lost
            self._data, self._pos = data, 0
        out = self._data[self._pos:self._pos + size]
        self._pos += len(out)
        return out

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """paho's ``loop_read``, reading on while packets are buffered (``max_packets`` is ignored as paho ignores it)."""
        client = self._client
        while True:
            if client._sock is None:  # noqa: SLF001
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return client._loop_rc_handle(rc)  # noqa: SLF001
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN or not self.buffered():
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


def make_client(mqtt_settings: dict, client_id: str) -> mqtt.Client:
    """The persistent, manually acknowledging paho client, as foundation.mqttclient.make_client makes it
    (without importing Liaowang's settings models: ``mqtt_settings`` is their plain dict)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                         protocol=mqtt.MQTTv311, manual_ack=True)
    if mqtt_settings.get("username"):
        client.username_pw_set(mqtt_settings["username"], mqtt_settings.get("password"))
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(10_000)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


# ---------------------------------------------------------------------------------------------- child

class _Child:
    """The child's side: one paho client, a sender thread, and the parent's commands on stdin."""

    def __init__(self, settings: dict, client_id: str, window: int, chunk: int, out: IO[bytes]) -> None:
        self._settings, self._window, self._chunk, self._out = settings, window, chunk, out
        self._out_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: list[list[Any]] = []
        self._outstanding = 0      # received, not yet finished by the parent
        self._gen = 0              # bumped on connect and on disconnect: acks of another connection are void
        self._gen_lock = threading.Lock()
        self._stopping = False
        self._client = make_client(settings, client_id)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        # paho walks its topic-filter trie for every message even with no filtered callbacks (3-10 % of its
        # time, BENCHMARKS.md); ingest registers none, so the message goes straight to on_message.
        self._client._handle_on_message = self._on_raw  # noqa: SLF001
        BulkReader(self._client).install()

    def _send(self, frame: list) -> None:
        with self._out_lock:
            write_frame(self._out, frame)

    def run(self, commands: IO[bytes]) -> None:
        """Connect, forward messages, obey commands until told to stop or stdin closes."""
        threading.Thread(target=self._forward, name="receiver-forward", daemon=True).start()
        self._client.connect_async(self._settings["host"], self._settings["port"], self._settings["keepalive_s"])
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
        sock = self._client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _forward(self) -> None:
        cond = self._cond
        busy = False  # messages forwarded since the last trim
        while True:
            with cond:
                # after a quiet spell that followed traffic, hand the burst's freed buffers back to the OS
                if not cond.wait_for(lambda: self._pending, timeout=IDLE_TRIM_AFTER_S if busy else None):
                    chunk = None
                else:
                    chunk, self._pending = self._pending[:self._chunk], self._pending[self._chunk:]
            if chunk is None:
                busy = TRIM_AVAILABLE and not release_freed_heap()  # rate-limited: retry after another quiet second
                continue
            self._send(["m", chunk])
            busy = True

    # paho callbacks (its network thread)

    def _on_connect(self, client: Any, userdata: object, flags: Any, reason: Any, props: object) -> None:
        if getattr(reason, "is_failure", False):
            self._send(["f", f"connect refused: {reason}"])
            return
        with self._gen_lock:
            self._gen += 1
            gen = self._gen
        # A resumed session's queued messages follow the CONNACK at once, before the SUBACK: the parent must
        # know their connection now, or it takes them for an older one's and never acknowledges them. Sent
        # from this thread before any message of the connection is queued, so it precedes them on the pipe.
        self._send(["g", gen])
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
    _Child(config[1], config[2], config[3], config[4], out).run(commands)




if __name__ == "__main__":
    _child_main()
