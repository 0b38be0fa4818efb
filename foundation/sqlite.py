"""How every Liaowang store opens its SQLite file: one place for the pragmas.

A leaf module (the standard library only), so ingest's readings store and alerting's alerts.db
share it without alerting importing ingest.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path | str) -> sqlite3.Connection:
    """Open a SQLite file in WAL mode with the pragmas every Liaowang store uses."""
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
    conn.execute("PRAGMA busy_timeout=30000")
    return conn
