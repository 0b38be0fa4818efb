"""People's alarm actions as commands to the partition's owner (issue 15: one writer per site's alarms).

The worker that owns a site's partition is the only writer of its alarms (`AlertManager` keeps the
open episodes in memory). A stateless ``liaowang api`` therefore never writes an alarm: it sends the
action as a NATS request to ``lw.cmd.{p}`` (p = `partition_of(site, P)`), the owner runs
`apply_command` and replies. ``liaowang run`` calls `apply_command` in process, so both roles share
one validation and one mapping of lifecycle errors to replies (and the API one mapping to HTTP).

A request is a JSON object: ``action`` (one of `ACTIONS`), ``site_id`` (routing, checked against
the alarm), ``by`` and ``role`` (the authenticated person), and the action's fields:

===================== =====================================================
``acknowledge``       ``alert_id``, ``note``?
``close``             ``alert_id``, ``note``, ``cause``?
``shelve``            ``alert_id``, ``until`` (epoch s), ``reason``
``unshelve``          ``alert_id``
``take_out_of_service`` ``sensor_id``, ``reason``, ``until``? (epoch s)
``return_to_service`` ``sensor_id``
``suppress``          ``window``: ``site_id`` or ``sensor_id``, ``start``, ``end`` (epoch s), ``reason``,
                      ``include_gas``? (a maintenance window: the owner's `Suppressions` is the one in use)
``cancel_suppression`` ``window_id``
===================== =====================================================

An optional ``request_id`` (a string; `CommandClient` always sends one and reuses it when it retries) makes the
command idempotent: the owner records the reply of an applied request with the action, in its transaction
(`alerting.requests.AppliedRequests`, kept a day), and answers a repeat with the recorded reply plus
``"repeated": true`` without applying it again — a retried maintenance window is created once.

The reply is ``{"ok": true, "alert": {...}|null, "events": [...], "entry": {...}?, "done": bool?}`` or
``{"ok": false, "error": <kind>, "detail": "..."}`` with kind and HTTP status from `ERRORS`. No
exception escapes `apply_command`: a bad request, a lifecycle refusal, a store that cannot write or a
bug all become a reply (the last two logged), so the requester always learns what happened.

>>> apply_command(None, {"action": "dance"})["error"]
'bad_request'
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
import time
import uuid
from typing import Any, Callable, Mapping

import orjson
import structlog

from foundation.database import hide_password
from alerting import AlertChange, AlertManager, AlertNotFound, InvalidAction, LifecycleError, NotPermitted
from alerting.requests import AppliedRequests
from ingest.base import DownstreamUnavailable

__all__ = ["ACTIONS", "ERRORS", "CommandClient", "OwnerUnavailable", "apply_command", "command_subject",
           "partition_of", "serve_commands"]

log = structlog.get_logger("commands")

ACTIONS = ("acknowledge", "close", "shelve", "unshelve", "take_out_of_service", "return_to_service", "suppress",
           "cancel_suppression")
ERRORS = {"bad_request": 400, "not_found": 404, "not_permitted": 403, "invalid": 422, "conflict": 409,
          "not_owner": 503, "unavailable": 503, "owner_unavailable": 503, "internal": 500}
"""Reply error kinds and the HTTP status the API answers with. ``not_owner``: the receiver does not own the
site's partition (a lease moved: retry); ``unavailable``: the owner's store cannot write now (or it was fenced);
``owner_unavailable``: no owner answered (set by the requester, `CommandClient`)."""

Run = Callable[[Callable[[], list[AlertChange]]], list[AlertChange]]
"""Runs an action in the owner's commit path (e.g. `Pipeline.act`: one transaction with the outbox, fenced)."""


def partition_of(site_id: str, partitions: int) -> int:
    """The partition of a site: `foundation.partition.partition_of` (h-nats, checked against nats-server) when
    present, else the same function here: NATS's ``partition()`` mapping is FNV-1a 32 of the token mod P.

    >>> partition_of("LC-LUXI", 1)
    0
    """
    try:
        from foundation.partition import partition_of as nats_partition  # type: ignore[import-not-found]
    except ImportError:  # until h-nats' module is merged
        h = 0x811C9DC5
        for byte in site_id.encode():
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
        return h % partitions
    return nats_partition(site_id, partitions)


def command_subject(site_id: str, partitions: int) -> str:
    """The NATS subject the owner of ``site_id``'s partition answers commands on."""
    return f"lw.cmd.{partition_of(site_id, partitions)}"


def _error(kind: str, detail: str) -> dict[str, Any]:
    return {"ok": False, "error": kind, "detail": detail}


def _text(request: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    value = request.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 2000:
        raise ValueError(f"{key}: a string of 1 to 2000 characters is required")
    return value


def _time(request: Mapping[str, Any], key: str, required: bool = True) -> float | None:
    value = request.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key}: epoch seconds (a finite number) are required")
    return float(value)


def _storage_error(err: BaseException) -> bool:
    """A store that cannot write now (SQLite, OS, PostgreSQL, a lost fence): the requester may retry."""
    return (isinstance(err, (sqlite3.Error, OSError, DownstreamUnavailable))
            or type(err).__module__.split(".")[0] == "psycopg" or type(err).__name__ == "Fenced")


class _Repeated(Exception):
    """The request was recorded by a concurrent repeat while this one ran: roll this one's action back."""


def apply_command(manager: AlertManager | None, request: Any, run: Run | None = None,
                  owns: Callable[[str], bool] | None = None, clock: Callable[[], float] = time.time,
                  requests: AppliedRequests | None = None) -> dict[str, Any]:
    """Run one person's action on ``manager`` and describe the outcome; never raises.

    ``run`` commits it (default: the manager's own transaction; the pipeline passes `Pipeline.act`,
    which adds the notification outbox and publishes). ``owns(site_id)`` says whether this process owns
    the site's partition now (default: yes): a command for another site answers ``not_owner``. ``clock``
    stamps maintenance windows (the lifecycle's own actions use the manager's clock). ``requests``: where
    applied requests are recorded (in the same store as the manager's, joined to ``run``'s transaction); with it
    a request carrying a ``request_id`` already applied is answered with its recorded reply, not applied again.
    """
    try:
        if not isinstance(request, Mapping):
            raise ValueError("a command is a JSON object")
        action = request.get("action")
        if action not in ACTIONS:
            raise ValueError(f"action: one of {', '.join(ACTIONS)}")
        by = _text(request, "by")
        role = request.get("role", "viewer")
        site_id = _text(request, "site_id")
        request_id = _text(request, "request_id", required=False)
        if manager is None:
            raise ValueError("no alarm manager in this process")
        call, alert_id = _build(manager, action, request, by, role, clock)
    except ValueError as err:
        return _error("bad_request", str(err))
    if owns is not None and not owns(site_id):
        return _error("not_owner", f"this worker does not own site {site_id}'s partition now; retry")
    idempotent = requests is not None and request_id is not None
    outcome: dict[str, Any] = {}

    def act() -> list[AlertChange]:
        changes = call(outcome)
        if idempotent and not requests.record(request_id, _reply(manager, changes, outcome, alert_id), clock()):
            raise _Repeated(request_id)
        return changes

    try:
        if idempotent and (recorded := requests.reply(request_id)) is not None:
            return {**recorded, "repeated": True}  # before the checks: a repeated close finds its alarm closed
        if alert_id is not None:
            alert = manager.get(alert_id)
            if alert is None:
                return _error("not_found", f"no alert {alert_id}")
            if alert.site_id != site_id:
                return _error("bad_request", f"alert {alert_id} is of site {alert.site_id}, not {site_id}")
        changes = (run or _own_transaction(manager))(act)
    except _Repeated:
        return apply_command(manager, request, run, owns, clock, requests)  # answered from the record now
    except AlertNotFound as err:
        return _error("not_found", f"no alert {err}")
    except NotPermitted as err:
        return _error("not_permitted", str(err))
    except InvalidAction as err:
        return _error("invalid", str(err))
    except LifecycleError as err:
        return _error("conflict", str(err))
    except Exception as err:
        if _storage_error(err):
            log.warning("command_not_stored", action=action, error=f"{type(err).__name__}: {str(err)[:200]}")
            return _error("unavailable", f"the alarm store cannot write now: {type(err).__name__}: {str(err)[:200]}")
        log.error("command_failed", action=action, error=f"{type(err).__name__}: {err}", exc_info=True)
        return _error("internal", f"{type(err).__name__}: {str(err)[:200]}")
    return _reply(manager, changes, outcome, alert_id)


def _reply(manager: AlertManager, changes: list[AlertChange], outcome: dict[str, Any],
           alert_id: str | None) -> dict[str, Any]:
    """The success reply of an applied action."""
    reply: dict[str, Any] = {"ok": True, "events": [c.event for c in changes], **outcome}
    if alert_id is not None:
        current = changes[-1].alert if changes else manager.get(alert_id)
        reply["alert"] = current.to_json() if current is not None else None
    return reply


def _own_transaction(manager: AlertManager) -> Run:
    def run(action: Callable[[], list[AlertChange]]) -> list[AlertChange]:
        with manager.transaction():
            return action()
    return run


def _build(manager: AlertManager, action: str, request: Mapping[str, Any], by: str, role: Any,
           clock: Callable[[], float]) -> tuple[Callable[[dict[str, Any]], list[AlertChange]], str | None]:
    """The call for ``action`` with its validated fields, and the alert it is about (None: a sensor, a window)."""
    if action in ("suppress", "cancel_suppression"):
        return _suppression(manager, action, request, by, clock), None
    if action in ("take_out_of_service", "return_to_service"):
        sensor_id = _text(request, "sensor_id")
        if action == "return_to_service":
            def back(out: dict[str, Any]) -> list[AlertChange]:
                out["done"] = manager.return_to_service(sensor_id, by)
                return []
            return back, None
        reason, until = _text(request, "reason"), _time(request, "until", required=False)

        def take_out(out: dict[str, Any]) -> list[AlertChange]:
            out["entry"] = manager.take_out_of_service(sensor_id, by, reason, until).to_json()
            return []
        return take_out, None
    alert_id = _text(request, "alert_id")
    if action == "acknowledge":
        note = _text(request, "note", required=False)
        return (lambda out: manager.acknowledge(alert_id, by, note)), alert_id
    if action == "close":
        note, cause = _text(request, "note"), _text(request, "cause", required=False)
        return (lambda out: manager.close(alert_id, by, note, cause)), alert_id
    if action == "shelve":
        until, reason = _time(request, "until"), _text(request, "reason")
        if role not in ("viewer", "operator", "duty_officer", "admin"):
            raise ValueError("role: viewer, operator, duty_officer or admin")
        return (lambda out: manager.shelve(alert_id, by, until, reason, role)), alert_id
    return (lambda out: manager.unshelve(alert_id, by)), alert_id


def _suppression(manager: AlertManager, action: str, request: Mapping[str, Any], by: str,
                 clock: Callable[[], float]) -> Callable[[dict[str, Any]], list[AlertChange]]:
    suppressions, audit = manager.suppressions, manager.audit
    if suppressions is None or audit is None:
        raise ValueError("this alarm manager has no maintenance windows")
    if action == "cancel_suppression":
        window_id = _text(request, "window_id")

        def cancel(out: dict[str, Any]) -> list[AlertChange]:
            window = next((w for w in suppressions.all() if w.id == window_id), None)
            if window is None or not suppressions.cancel(window_id, clock()):
                raise AlertNotFound(f"window {window_id}")
            audit.append(clock(), by, "suppression_cancelled", None, window.sensor_id or window.site_id,
                         window_id=window_id)
            out["window"] = {"id": window_id, "cancelled": True}
            return []
        return cancel
    window = request.get("window")
    if not isinstance(window, Mapping):
        raise ValueError("window: an object is required")
    site_id, sensor_id = _text(window, "site_id", False), _text(window, "sensor_id", False)
    if (site_id is None) == (sensor_id is None):
        raise ValueError("window: give site_id or sensor_id")
    start, end, reason = _time(window, "start"), _time(window, "end"), _text(window, "reason")
    include_gas = bool(window.get("include_gas", False))

    def add(out: dict[str, Any]) -> list[AlertChange]:
        added = suppressions.add(site_id, sensor_id, start, end, reason, by, clock(), include_gas)
        audit.append(clock(), by, "suppressed", None, sensor_id or site_id, window=added.to_json())
        out["window"] = added.to_json()
        return []
    return add


class OwnerUnavailable(Exception):
    """No owner answered the command in time (no worker holds the partition, or it is busy): HTTP 503, retry.

    The action may or may not have been applied; the caller is told to look and retry, never that it worked.
    """


async def serve_commands(nc: Any, partition: int, handle: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """Answer the commands of ``partition`` on ``nc`` (a connected nats-py client) with ``handle`` (typically
    ``lambda r: apply_command(pipeline.alerts, r, pipeline.act, owns)``), run in a thread: it writes the store.
    Returns the subscription (``await sub.unsubscribe()`` when the lease is lost)."""

    async def on_message(msg: Any) -> None:
        try:
            request = orjson.loads(msg.data)
        except orjson.JSONDecodeError as err:
            reply = _error("bad_request", f"not JSON: {err}")
        else:
            try:
                reply = await asyncio.to_thread(handle, request)
            except Exception as err:  # a handler other than apply_command: the requester still gets an answer
                log.error("command_handler_failed", partition=partition, error=f"{type(err).__name__}: {err}",
                          exc_info=True)
                reply = _error("internal", f"{type(err).__name__}: {str(err)[:200]}")
        await msg.respond(orjson.dumps(reply))

    # a queue group: should two processes ever both subscribe (a lease handover), one of them answers
    return await nc.subscribe(f"lw.cmd.{partition}", queue="lw-owner", cb=on_message)


class CommandClient:
    """Sends commands to partition owners over NATS; usable from sync code (the API's route threads).

    It runs its own asyncio loop in a daemon thread holding one nats-py connection (nats-py clients
    belong to one loop). `send` waits at most ``timeout_s`` for the owner's reply and raises
    `OwnerUnavailable` otherwise — never a silent success. Every request gets a ``request_id`` (unless it has
    one) and is sent again with the same id, up to ``retries`` times, when no owner answered: the owner applies
    it once and answers the repeat with the recorded reply.

    >>> # client = CommandClient(["nats://127.0.0.1:4222"], partitions=8).start()
    >>> # client.send("LC-LUXI", {"action": "acknowledge", "site_id": "LC-LUXI", "alert_id": "…", "by": "张三"})
    """

    def __init__(self, servers: list[str], partitions: int, timeout_s: float = 3.0, user: str | None = None,
                 password: str | None = None, retries: int = 1) -> None:
        self.servers = servers
        self.retries = retries
        self.partitions = partitions
        self._user, self._password = user, password  # the `api` user of credentials.json; never logged
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-commands", daemon=True)
        self._nc: Any = None

    def start(self) -> "CommandClient":
        """Connect (nats-py reconnects by itself afterwards); raises when no server answers at first."""
        import nats  # imported here: `liaowang run` never needs it

        self._thread.start()

        async def on_error(err: Exception) -> None:  # nats-py reconnects by itself; say what it meets
            log.warning("nats_error", servers=[hide_password(u) for u in self.servers], error=f"{type(err).__name__}: {err}")

        async def connect() -> Any:
            return await nats.connect(servers=self.servers, name="liaowang-api", max_reconnect_attempts=-1,
                                      connect_timeout=self.timeout_s, error_cb=on_error, user=self._user,
                                      password=self._password)
        self._nc = asyncio.run_coroutine_threadsafe(connect(), self._loop).result(self.timeout_s + 5)
        return self

    @property
    def connected(self) -> bool:
        """Whether the NATS link is up (for /healthz)."""
        return self._nc is not None and self._nc.is_connected

    async def request(self, site_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Send one command to the owner of ``site_id`` and return its reply (a coroutine on this client's loop)."""
        import nats.errors

        subject = command_subject(site_id, self.partitions)
        try:
            msg = await self._nc.request(subject, orjson.dumps(request), timeout=self.timeout_s)
        except nats.errors.NoRespondersError:
            raise OwnerUnavailable(f"no owner of {subject} now (a partition being taken over?): retry") from None
        except nats.errors.TimeoutError:
            raise OwnerUnavailable(f"the owner of {subject} did not answer within {self.timeout_s:g} s: retry") from None
        except nats.errors.Error as err:
            raise OwnerUnavailable(f"NATS: {type(err).__name__}: {err}") from None
        try:
            reply = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise OwnerUnavailable(f"the owner of {subject} sent a reply that is not a command reply")
        return reply

    def send(self, site_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """`request` from sync code (any thread but this client's loop), with a ``request_id``, retried with it
        while no owner answers (a timeout, a partition being taken over); raises the last `OwnerUnavailable`."""
        if self._nc is None:
            raise OwnerUnavailable("not connected to NATS")
        request = request if request.get("request_id") else {**request, "request_id": uuid.uuid4().hex}
        for attempt in range(self.retries + 1):
            future = asyncio.run_coroutine_threadsafe(self.request(site_id, request), self._loop)
            try:
                return future.result(self.timeout_s + 2)
            except TimeoutError:
                future.cancel()
                failure = OwnerUnavailable(f"no reply within {self.timeout_s:g} s: retry")
            except OwnerUnavailable as err:
                failure = err
            log.warning("command_retry" if attempt < self.retries else "command_unanswered", site_id=site_id,
                        action=request.get("action"), request_id=request["request_id"], attempt=attempt + 1,
                        error=str(failure))
            if attempt < self.retries:
                time.sleep(min(0.2 * 2 ** attempt, 1.0))  # a takeover takes a moment: do not hammer it
        raise failure

    def close(self) -> None:
        """Drain the connection and stop the loop."""
        if self._nc is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._nc.drain(), self._loop).result(5)
            except Exception as err:  # closing anyway: nothing waits on this connection any more
                log.warning("nats_close_failed", error=str(err))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
