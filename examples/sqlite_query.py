"""A blocking ``sqlite3`` query: C work that releases the GIL, on a per-thread connection.

``offbench run -w examples.sqlite_query:query -s to-thread -s process-pool --quick``
measures it as is; ``examples/sqlite.toml`` passes a connection made by :func:`connect`
(``setup``), one per thread, as ``sqlite3`` connections must stay on their thread.
"""

import sqlite3

ROWS = 4000
SUM = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT sum(x) FROM c"


def connect() -> sqlite3.Connection:
    """Return a new in-memory connection: the setup factory, called once per thread."""
    return sqlite3.connect(":memory:")


def run(conn: sqlite3.Connection, rows: int = ROWS) -> int:
    """Sum 1..rows in SQLite on ``conn``: one blocking query of a few milliseconds."""
    return int(conn.execute(SUM, (rows,)).fetchone()[0])


def query(rows: int = ROWS) -> int:
    """Connect, run the query, close: the same work without a setup, for ``-w`` alone."""
    conn = connect()
    try:
        return run(conn, rows)
    finally:
        conn.close()
