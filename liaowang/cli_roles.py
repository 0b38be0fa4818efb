"""`liaowang worker`: the scaled-out role that runs the partitions it holds leases for (liaowang/worker.py).

Where it connects comes from the command line or the environment, never from the config files
(they are the same for every role and every node):

- NATS: ``--credentials credentials.json`` (written by ``liaowang nats-config``: servers, the worker's
  password, P), or ``LIAOWANG_NATS_URL`` (comma-separated), ``LIAOWANG_NATS_USER`` (default
  ``worker``), ``LIAOWANG_NATS_PASSWORD`` and ``--partitions``;
- shared state: ``--database-url``, ``LIAOWANG_DATABASE_URL`` or the configuration's ``storage.database_url``
  (``LIAOWANG_STORAGE__DATABASE_URL``), ``postgresql://…``.

SIGTERM or Ctrl-C hands every partition back (final snapshot, lease released) before exiting.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from foundation.config import default_config_dir, load_config

__all__ = ["add_role_parsers"]


def _endpoint(args: argparse.Namespace):
    from ingest.jetstream import NatsEndpoint

    if args.credentials:
        creds = json.loads(Path(args.credentials).read_text())
        return NatsEndpoint(tuple(creds["servers"]), "worker", creds["passwords"]["worker"]), creds.get("partitions")
    servers = tuple(s for s in os.environ.get("LIAOWANG_NATS_URL", "nats://127.0.0.1:4222").split(",") if s)
    return NatsEndpoint(servers, os.environ.get("LIAOWANG_NATS_USER", "worker"),
                        os.environ.get("LIAOWANG_NATS_PASSWORD")), None


def cmd_worker(args: argparse.Namespace) -> int:
    from liaowang.worker import Worker, WorkerOptions, default_owner

    config = load_config(Path(args.config) if args.config else default_config_dir())
    endpoint, known = _endpoint(args)
    partitions = args.partitions or known
    configured = config.settings.storage.database_url
    database = (args.database_url or os.environ.get("LIAOWANG_DATABASE_URL")
                or (configured.get_secret_value() if configured is not None else None))
    if not partitions:
        print("--partitions is required without --credentials", file=sys.stderr)
        return 2
    if not database:
        print("--database-url, LIAOWANG_DATABASE_URL or storage.database_url is required (postgresql://…): "
              "the shared alarm store",
              file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir or config.settings.storage.data_dir)
    options = WorkerOptions(endpoint=endpoint, database=database, partitions=partitions, data_dir=data_dir,
                            owner=args.owner or default_owner(), lease_ttl_s=args.lease_ttl_s,
                            health_port=args.health_port, bureau=not args.no_bureau)
    worker = Worker(config, options)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()
    return 0


def add_role_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``worker`` on the `liaowang` command's subparsers."""
    worker = sub.add_parser("worker", help="run the partitions this process holds leases for (NATS JetStream + "
                                           "PostgreSQL); start several")
    worker.add_argument("--config")
    worker.add_argument("--data-dir", help="this worker's own files (readings when no InfluxDB is configured)")
    worker.add_argument("--credentials", help="credentials.json written by `liaowang nats-config`")
    worker.add_argument("--partitions", type=int, help="P (default: from --credentials)")
    worker.add_argument("--database-url", help="postgresql://… (default: $LIAOWANG_DATABASE_URL)")
    worker.add_argument("--lease-ttl-s", type=float, default=6.0,
                        help="a dead worker's partitions move after about this long (renewed every third)")
    worker.add_argument("--health-port", type=int, help="serve /healthz and /metrics on 127.0.0.1:PORT")
    worker.add_argument("--owner", help="this worker's name in the leases (default: host-pid-random)")
    worker.add_argument("--no-bureau", action="store_true", help="never run the bureau desk (notification delivery)")
    worker.set_defaults(func=cmd_worker)
