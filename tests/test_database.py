"""The backend layer under the stores: URL validation, placeholder translation, exact round trips on PostgreSQL."""

from __future__ import annotations

import math
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting.db import AlertDB
from foundation.database import (POSTGRES, SQLITE, StoreError, StoreIntegrityError, target_name,
                                 translate_placeholders, validate_database_url)


@pytest.mark.parametrize("url, reason", [
    ("mysql://db/liaowang", "must start with postgresql://"),
    ("db.example/liaowang", "must be a URL like postgresql://"),
    ("postgresql://db:54x2/liaowang", "bad port"),
    ("postgresql://db:5432", "names no database"),
    ("postgresql://db:5432/", "names no database"),
])
def test_a_bad_database_url_is_refused_saying_why(url, reason):
    with pytest.raises(ValueError, match=reason):
        validate_database_url(url)


def test_good_urls_pass_and_passwords_are_hidden_in_names():
    for url in ("postgresql://lw:pw@10.0.0.5:5432/liaowang", "postgres://db/liaowang",
                "postgresql://db/x?options=-csearch_path%3Dp1", "postgresql:///liaowang?host=/run/postgresql"):
        assert validate_database_url(url) == url
    assert target_name("postgresql://lw:pw@db/x") == "postgresql://lw:***@db/x"
    assert target_name("/var/lib/liaowang/alerts.db") == "/var/lib/liaowang/alerts.db"


def test_placeholders_outside_quotes_become_psycopg_ones_and_percent_signs_are_doubled():
    assert translate_placeholders("SELECT ? , '?', \"a?\" FROM t WHERE x LIKE '%a' AND y = ?") == \
        "SELECT %s , '?', \"a?\" FROM t WHERE x LIKE '%%a' AND y = %s"
    assert translate_placeholders("SELECT 'it''s ?' , ?") == "SELECT 'it''s ?' , %s"


def test_the_dialects_differ_only_where_the_backends_do():
    assert SQLITE.json_field("d", "k") == "json_extract(d, '$.k')"
    assert POSTGRES.json_number("d", "k") == "(((d)::jsonb ->> 'k'))::double precision"
    assert (SQLITE.no_limit, POSTGRES.no_limit, SQLITE.false, POSTGRES.false) == ("-1", "ALL", "0", "FALSE")


_VALUES = st.tuples(st.floats(allow_nan=False), st.binary(max_size=300), st.integers(-2**63, 2**63 - 1),
                    st.text(max_size=50).filter(lambda s: "\x00" not in s),  # PostgreSQL text holds no NUL
                    st.none() | st.floats(allow_nan=False, allow_infinity=False))


@pytest.fixture(scope="module")
def round_trip_db(pg_server):
    url = pg_server.create_database()
    db = AlertDB(url)
    db.conn.executescript(db.dialect.schema(
        "CREATE TABLE t (k {serial}, f DOUBLE PRECISION, b {blob}, i BIGINT, s TEXT, n DOUBLE PRECISION)"))
    yield db
    db.close()
    pg_server.drop_database(url)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_VALUES)
def test_values_round_trip_exactly_as_in_sqlite(round_trip_db, values):
    """A float comes back bit for bit (DOUBLE PRECISION), bytes as bytes (BYTEA), 64-bit integers, text, NULL."""
    conn = round_trip_db.conn
    key = conn.execute("INSERT INTO t (f, b, i, s, n) VALUES (?, ?, ?, ?, ?) RETURNING k", values).fetchone()[0]
    back = conn.execute("SELECT f, b, i, s, n FROM t WHERE k = ?", (key,)).fetchone()
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE t (f DOUBLE PRECISION, b BLOB, i BIGINT, s TEXT, n DOUBLE PRECISION)")
    lite.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", values)
    assert back == lite.execute("SELECT * FROM t").fetchone() == values
    assert type(back[1]) is bytes and all(math.copysign(1, a) == math.copysign(1, b)
                                          for a, b in ((back[0], values[0]),) if a == 0)


def test_postgresql_errors_are_store_errors_the_pipeline_already_handles(pg_url):
    db = AlertDB(pg_url)
    db.conn.execute("CREATE TABLE u (k TEXT PRIMARY KEY)")
    db.conn.execute("INSERT INTO u VALUES (?)", ("a",))
    with pytest.raises(StoreIntegrityError) as duplicate:
        db.conn.execute("INSERT INTO u VALUES (?)", ("a",))
    assert isinstance(duplicate.value, sqlite3.IntegrityError) and isinstance(duplicate.value, sqlite3.Error)
    with pytest.raises(StoreError, match="UndefinedTable"):
        db.conn.execute("SELECT * FROM nowhere")
    with pytest.raises(StoreError):
        with db.transaction():
            db.conn.execute("INSERT INTO u VALUES (?)", ("b",))
            db.conn.execute("INSERT INTO u VALUES (?)", ("a",))
    assert db.conn.execute("SELECT k FROM u").fetchall() == [("a",)]  # the whole transaction rolled back
    assert not db.conn.in_transaction


def test_an_unreachable_server_is_a_store_error_naming_it():
    with pytest.raises(StoreError, match="PostgreSQL"):
        AlertDB("postgresql://nobody@127.0.0.1:9/nothing")
