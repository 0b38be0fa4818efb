"""Where the shared state lives: a SQLite file (the embedded default) or a PostgreSQL database.

Every store writes through one connection of the same shape — ``execute(sql, params)`` returning a
cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``), ``executemany``, ``executescript`` —
whichever the backend. The stores' SQL is written once, in the dialect both speak
(``INSERT … ON CONFLICT … DO UPDATE/NOTHING``, ``DOUBLE PRECISION``, ``BIGINT``, quoted reserved
words); what truly differs (an auto-numbered key, a byte column, ``WITHOUT ROWID``, JSON access,
the begin statement) comes from a small `Dialect`. The PostgreSQL connection only translates the
``?`` placeholder to psycopg's ``%s`` (and a literal ``%`` to ``%%``); it never rewrites SQL.

Errors from either backend reach callers as `sqlite3.Error`: PostgreSQL's are raised as
`StoreError` (a `sqlite3.DatabaseError`), so every handler that already reports a failing
``alerts.db`` (a full disk, a locked file) reports a failing PostgreSQL the same way.

>>> is_database_url("postgresql://liaowang@db/liaowang"), is_database_url("data/alerts.db")
(True, False)
>>> SQLITE.schema("CREATE TABLE t (seq {serial}, doc {blob})")
'CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, doc BLOB)'
>>> POSTGRES.schema("CREATE TABLE t (k TEXT PRIMARY KEY, doc {blob}){without_rowid}")
'CREATE TABLE t (k TEXT PRIMARY KEY, doc BYTEA)'
>>> translate_placeholders("SELECT x FROM t WHERE a = ? AND b LIKE '50%?'")
"SELECT x FROM t WHERE a = %s AND b LIKE '50%%?'"
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Iterable, Protocol, Sequence
from urllib.parse import urlsplit

__all__ = ["Transactional", "Dialect", "SQLITE", "POSTGRES", "StoreError", "StoreIntegrityError", "Fenced", "PgConnection",
           "is_database_url", "validate_database_url", "translate_placeholders"]

_SCHEMES = ("postgresql", "postgres")


class StoreError(sqlite3.DatabaseError):
    """A store could not read or write PostgreSQL (connection lost, constraint, server error).

    A `sqlite3.DatabaseError` so the handlers that report a failing ``alerts.db`` cover it too; the
    psycopg error is its ``__cause__``.
    """


class StoreIntegrityError(StoreError, sqlite3.IntegrityError):
    """A constraint refused the write (a duplicate key, a missing reference), on PostgreSQL."""


class Fenced(StoreError):
    """A transaction for a partition was refused: a worker with a higher lease epoch has written it.

    The worker that gets this has lost the partition's lease; nothing of the transaction is kept and
    it must stop writing for that partition (a new lease gives a new, higher epoch).
    """

    def __init__(self, partition: int, epoch: int, recorded: int) -> None:
        super().__init__(f"partition {partition}: epoch {epoch} is fenced off by epoch {recorded}")
        self.partition, self.epoch, self.recorded = partition, epoch, recorded


@dataclass(frozen=True)
class Dialect:
    """What the two backends spell differently; everything else in the stores' SQL is shared."""

    name: str
    blob: str            # a column of bytes
    serial: str          # an auto-numbered integer primary key (strictly increasing, never reused)
    without_rowid: str   # SQLite's clustered-table suffix; nothing on PostgreSQL
    begin: str           # the statement that opens a write transaction
    no_limit: str        # a LIMIT that limits nothing (for LIMIT … OFFSET …)
    false: str           # an SQL condition that is never true

    def schema(self, text: str) -> str:
        """A schema script with ``{blob}``, ``{serial}`` and ``{without_rowid}`` spelled for this backend."""
        return text.format(blob=self.blob, serial=self.serial, without_rowid=self.without_rowid)

    def json_field(self, document: str, key: str) -> str:
        """An SQL expression for the top-level field ``key`` of the JSON text ``document`` (NULL when absent).

        SQLite gives the JSON value's own type; PostgreSQL gives text, cast back by `json_number` where a
        number is compared."""
        if self.name == "sqlite":
            return f"json_extract({document}, '$.{key}')"
        return f"(({document})::jsonb ->> '{key}')"

    def json_number(self, document: str, key: str) -> str:
        """Like `json_field`, as a number (for comparisons and arithmetic)."""
        if self.name == "sqlite":
            return self.json_field(document, key)
        return f"({self.json_field(document, key)})::double precision"

    def text_of(self, column: str) -> str:
        """An SQL expression for the UTF-8 text held in a byte column."""
        return f"CAST({column} AS TEXT)" if self.name == "sqlite" else f"convert_from({column}, 'UTF8')"


SQLITE = Dialect("sqlite", blob="BLOB", serial="INTEGER PRIMARY KEY AUTOINCREMENT", without_rowid=" WITHOUT ROWID",
                 begin="BEGIN IMMEDIATE", no_limit="-1", false="0")
POSTGRES = Dialect("postgresql", blob="BYTEA", serial="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                   without_rowid="", begin="BEGIN", no_limit="ALL", false="FALSE")


class Transactional(Protocol):
    """What a store needs of its database (``alerting.db.AlertDB`` is one): a connection, its lock, the
    dialect, and nestable all-or-nothing transactions (fenced, on a worker's view)."""

    conn: Any
    lock: Any

    @property
    def dialect(self) -> Dialect: ...

    def transaction(self) -> ContextManager[Any]: ...


def dialect_of(conn: object) -> Dialect:
    """The dialect a connection speaks (a `PgConnection`: PostgreSQL; anything else: SQLite)."""
    return getattr(conn, "dialect", SQLITE)


def is_database_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL database (``postgresql://…``) rather than a SQLite file."""
    return isinstance(target, str) and target.split("://", 1)[0].lower() in _SCHEMES and "://" in target


def validate_database_url(url: str) -> str:
    """``url`` when it is a usable PostgreSQL URL, else `ValueError` saying what is wrong.

    >>> validate_database_url("postgresql://liaowang:secret@10.0.0.5:5432/liaowang")
    'postgresql://liaowang:secret@10.0.0.5:5432/liaowang'
    >>> validate_database_url("mysql://db/x")
    Traceback (most recent call last):
    ...
    ValueError: storage.database_url must start with postgresql:// (or postgres://), not 'mysql://…'
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme.lower() not in _SCHEMES:
        raise ValueError(f"storage.database_url must start with postgresql:// (or postgres://), not {scheme + '://…'!r}"
                         if scheme else "storage.database_url must be a URL like postgresql://user:password@host/db")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as err:
        raise ValueError(f"storage.database_url has a bad port: {err}") from None
    if not parts.path.strip("/") and "dbname=" not in parts.query:
        raise ValueError("storage.database_url names no database (postgresql://user:password@host:5432/DBNAME)")
    return url


@functools.lru_cache(maxsize=4096)
def translate_placeholders(sql: str) -> str:
    """``sql`` with each ``?`` outside quotes as psycopg's ``%s`` and every ``%`` doubled (psycopg reads ``%``
    everywhere in a query with parameters, also inside string literals)."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if ch == "%":
            out.append("%%")
        elif quote:
            out.append(ch)
            if ch == quote:
                quote = ""  # a doubled quote inside a literal closes and reopens: same outcome
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


_SESSION_LIMITS = (("idle_in_transaction_session_timeout", 60_000), ("statement_timeout", 120_000))
"""Session limits (ms) a PostgreSQL connection gets unless the URL (``options=-c …``), role or server sets them."""


def _params(params: Iterable[Any]) -> tuple:
    # SQLite stores a bool as 0/1 in an INTEGER column; PostgreSQL refuses to compare a boolean with a bigint.
    return tuple(int(p) if p is True or p is False else p for p in params)


class PgConnection:
    """A psycopg 3 connection with the shape of the `sqlite3.Connection` the stores use.

    Autocommit, as the SQLite connections (``isolation_level=None``): a statement outside a
    ``BEGIN``…``COMMIT`` commits by itself. A connection found closed (the server restarted, the
    network dropped) is opened again at the next statement outside a transaction; one lost inside
    a transaction fails that transaction, which the caller retries whole.
    """

    dialect = POSTGRES

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        import psycopg  # only deployments on PostgreSQL need it loaded

        self._psycopg = psycopg
        self.url = validate_database_url(url)
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.RLock()  # psycopg connections are thread-safe; this keeps reconnecting single
        self._raw = self._connect()
        self._open_transaction = False  # a BEGIN ran and its COMMIT/ROLLBACK has not

    def _connect(self):
        try:
            # keepalives: a server that vanished (power, network) is noticed in seconds, not at the kernel's hours
            raw = self._psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout_s)),
                                        keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3)
            # A worker that stalls inside a transaction (paused, hung) holds its partition's fence row and so blocks
            # the partition's next owner: the server ends such a session. Kept when the URL, role or server sets it.
            for setting, default_ms in _SESSION_LIMITS:
                if raw.execute(f"SHOW {setting}").fetchone()[0] == "0":
                    raw.execute(f"SET {setting} = {default_ms}")
            return raw
        except self._psycopg.Error as err:
            raise _as_store_error(err, self._psycopg) from err

    @property
    def raw(self):
        """The psycopg connection underneath (for LISTEN/NOTIFY and server details)."""
        return self._raw

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (also a failed one, or one whose connection was lost, waiting for its
        ROLLBACK)."""
        if self._raw.closed or self._raw.broken:
            return self._open_transaction
        return self._raw.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE

    def _ensure_open(self, sql: str) -> None:
        ends = sql.lstrip()[:8].upper().startswith(("COMMIT", "ROLLBACK"))
        if ends:
            self._open_transaction = False
        if not (self._raw.closed or self._raw.broken) or ends:
            return  # a COMMIT on a lost connection must fail below: nothing was committed
        if self._open_transaction:
            # a new connection would run the rest of the transaction's statements one by one, committed:
            # refuse until the caller rolls back and retries the whole transaction
            raise StoreError("PostgreSQL: the connection was lost inside a transaction; nothing of it is kept, "
                             "roll back and retry it")
        with self._lock:
            if self._raw.closed or self._raw.broken:
                self._raw = self._connect()

    def execute(self, sql: str, params: Sequence[Any] | Iterable[Any] = ()) -> Any:
        """Run one statement with ``?`` parameters; a cursor with ``fetchone``/``fetchall``/iteration/``rowcount``."""
        self._ensure_open(sql)
        try:
            cur = self._raw.cursor()
            cur.execute(translate_placeholders(sql), _params(params))
        except self._psycopg.Error as err:
            raise _as_store_error(err, self._psycopg) from err
        if sql.lstrip()[:5].upper() == "BEGIN":
            self._open_transaction = True
        return cur

    def executemany(self, sql: str, seq_of_params: Iterable[Iterable[Any]]) -> Any:
        """Run one statement once per parameter row (psycopg pipelines them)."""
        self._ensure_open(sql)
        try:
            cur = self._raw.cursor()
            cur.executemany(translate_placeholders(sql), [_params(p) for p in seq_of_params])
        except self._psycopg.Error as err:
            raise _as_store_error(err, self._psycopg) from err
        return cur

    def executescript(self, script: str) -> Any:
        """Run a script of statements without parameters (schemas), as one transaction when none is open.

        Serialised across processes by an advisory lock: PostgreSQL's ``CREATE … IF NOT EXISTS`` is not
        safe against two workers creating the same table at once."""
        self._ensure_open(script)
        own = not self.in_transaction
        try:
            if own:
                self._raw.execute("BEGIN")
                self._raw.execute("SELECT pg_advisory_xact_lock(7403111)")  # any fixed key: "schema changes"
            cur = self._raw.execute(script)
            if own:
                self._raw.execute("COMMIT")
            return cur
        except self._psycopg.Error as err:
            if own and not self._raw.closed:
                try:
                    self._raw.execute("ROLLBACK")
                except self._psycopg.Error:
                    pass  # the connection is gone: nothing to undo on our side
            raise _as_store_error(err, self._psycopg) from err

    def close(self) -> None:
        """Close the connection."""
        self._raw.close()


def _as_store_error(err: Exception, psycopg: Any) -> StoreError:
    kind = StoreIntegrityError if isinstance(err, psycopg.IntegrityError) else StoreError
    return kind(f"PostgreSQL: {type(err).__name__}: {str(err).strip()[:300]}")


def sqlite_path(conn: sqlite3.Connection) -> str:
    """The file behind a SQLite connection ('' in memory)."""
    return next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")


def table_columns(conn: Any, table: str) -> set[str]:
    """The column names of ``table`` (empty when it does not exist), on either backend."""
    if dialect_of(conn) is POSTGRES:
        rows = conn.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = current_schema() AND table_name = ?", (table,)).fetchall()
        return {r[0] for r in rows}
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def hide_password(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (any scheme: PostgreSQL, NATS …).

    >>> hide_password("nats://api:s3cret@127.0.0.1:4222")
    'nats://api:***@127.0.0.1:4222'
    >>> hide_password("nats://127.0.0.1:4222")
    'nats://127.0.0.1:4222'
    """
    try:
        password = urlsplit(url).password
    except ValueError:  # not a URL we can read: show nothing of it rather than a secret
        return "<unreadable URL>"
    return url.replace(f":{password}@", ":***@", 1) if password else url


def target_name(target: Path | str) -> str:
    """A target for logs and messages, with any password in a database URL hidden."""
    text = str(target)
    return hide_password(text) if is_database_url(text) else text
