"""``liaowang api``: the stateless HTTP, SSE and map role (issue 15) — no broker, no ingest, no rules here.

It serves the shared store that workers (or a ``liaowang run``) write — PostgreSQL when
``storage.database_url`` is set (woken by its NOTIFY), else the data dir's ``alerts.db`` —, fans the
event log out to its SSE clients and sends people's alarm actions to the partition owners over NATS.
Run any number of them behind a load balancer; each holds nothing a restart would lose.

    liaowang api --config config --data-dir data --http-port 8001 --credentials nats/credentials.json

``--credentials`` (servers, the ``api`` user, P), or ``--nats`` (or ``LIAOWANG_NATS_URL``,
comma-separated servers, with ``LIAOWANG_NATS_USER`` / ``LIAOWANG_NATS_PASSWORD``) and
``--partitions`` (or ``LIAOWANG_PARTITIONS``; it must equal the workers' P) route the actions; without
them the API still reads and streams, and answers actions with 503. Passwords never reach the log.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import structlog

from foundation.database import hide_password

__all__ = ["add_api_parser", "cmd_api"]

log = structlog.get_logger("cli")


class _Shutdown(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


def _raise_shutdown(signum: int, frame: object) -> None:
    raise _Shutdown()


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API, the SSE streams and the map over the shared store, with no pipeline in this process."""
    import uvicorn

    from foundation.config import default_config_dir, load_config
    from liaowang.api import create_app
    from liaowang.backend import ApiBackend
    from liaowang.broker import is_loopback, port_free
    from liaowang.commands import CommandClient
    from liaowang.httpserver import GRACEFUL_SHUTDOWN_S, HttpServer

    config = load_config(Path(args.config) if args.config else default_config_dir())
    settings = config.settings
    http_port = args.http_port or settings.http.port
    if not is_loopback(settings.http.host) and (settings.auth.holds_demo_tokens() or settings.auth.holds_demo_users()):
        log.error("demo_credentials_off_loopback", host=settings.http.host,
                  hint="remove the demo tokens and users from liaowang.yaml before listening on another address")
        return 2
    if not port_free(settings.http.host, http_port):
        log.error("http_port_in_use", host=settings.http.host, port=http_port, hint="choose another with --http-port")
        return 1
    data_dir = Path(args.data_dir or settings.storage.data_dir)
    url = getattr(settings.storage, "database_url", None)  # PostgreSQL (h-pg's storage.database_url)
    alert_db = wait = None
    if url is not None:
        from alerting.db import AlertDB
        from liaowang.pgnotify import listener

        dsn = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
        try:
            alert_db, wait = AlertDB(dsn), listener(dsn)
        except Exception as err:  # psycopg's own errors: say which store, never its password
            log.error("store_unreachable", error=type(err).__name__)
            return 1
    elif not (data_dir / "alerts.db").exists():
        log.error("store_missing", path=str(data_dir / "alerts.db"),
                  hint="point --data-dir at the data directory the workers (or liaowang run) write")
        return 1
    servers, user, password, known = _nats_login(args)
    partitions = args.partitions or known or int(os.environ.get("LIAOWANG_PARTITIONS", "0") or 0)
    commands = None
    if servers:
        if partitions < 1:
            log.error("partitions_missing", hint="give --partitions (the workers' cluster.partitions)")
            return 2
        try:
            commands = CommandClient(servers, partitions, user=user, password=password).start()
        except Exception as err:  # nats-py raises its own and OS errors: refuse to start half-wired
            log.error("nats_unreachable", servers=[hide_password(u) for u in servers],
                      error=f"{type(err).__name__}: {err}")
            return 1
    backend = ApiBackend(config, data_dir, commands, wait_for_events=wait, alert_db=alert_db)
    try:
        backend.start()
        server = HttpServer(uvicorn.Config(create_app(backend), host=settings.http.host, port=http_port,
                                           log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S), backend.hub)
        log.info("liaowang_api_ready", url=f"http://{settings.http.host}:{http_port}/", data_dir=str(data_dir),
                 nats=[hide_password(u) for u in servers] or None, partitions=partitions or None)
        signal.signal(signal.SIGTERM, _raise_shutdown)
        try:
            server.run()
        except (KeyboardInterrupt, _Shutdown):
            pass
    finally:
        backend.stop()
        log.info("liaowang_api_stopped")
    return 0


def _nats_login(args: argparse.Namespace) -> tuple[list[str], str | None, str | None, int | None]:
    """Servers, user, password and (when known) P: from ``--credentials`` (the ``api`` user of
    ``liaowang nats-config``'s credentials.json), else ``--nats`` / ``LIAOWANG_NATS_URL`` with
    ``LIAOWANG_NATS_USER`` / ``LIAOWANG_NATS_PASSWORD`` (or a user and password inside the URLs)."""
    if args.credentials:
        creds = json.loads(Path(args.credentials).read_text(encoding="utf-8"))
        return list(creds["servers"]), "api", creds["passwords"]["api"], creds.get("partitions")
    servers = [s for s in (args.nats or os.environ.get("LIAOWANG_NATS_URL", "")).split(",") if s]
    return servers, os.environ.get("LIAOWANG_NATS_USER"), os.environ.get("LIAOWANG_NATS_PASSWORD"), None


def add_api_parser(sub) -> None:
    """Add ``api`` to the `liaowang` argument parser."""
    api = sub.add_parser("api", help="the stateless HTTP/SSE/map role over the shared store (issue 15)")
    api.add_argument("--config")
    api.add_argument("--data-dir", help="the data directory whose alerts.db the workers write (SQLite stand-in)")
    api.add_argument("--http-port", type=int)
    api.add_argument("--credentials", help="credentials.json written by `liaowang nats-config` (servers, the api "
                     "user's password, P)")
    api.add_argument("--nats", help="NATS servers for commands to the partition owners (comma-separated; user "
                     "and password from LIAOWANG_NATS_USER / LIAOWANG_NATS_PASSWORD)")
    api.add_argument("--partitions", type=int, help="the workers' cluster.partitions")
    api.set_defaults(func=cmd_api)
