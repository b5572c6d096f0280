"""What every benchmark script shares: a throwaway PostgreSQL database beside DATABASE_URL, manage.py, logging.

Figures go to stdout (the last line one JSON object); progress goes to stderr through `log`.
"""

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_database_url(url: str, bench: str) -> tuple[str, str, str]:
    """(admin URL, bench URL, bench database name) for a database `<name>_bench_<bench>` beside `url`."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit(f"bench/{bench}.py needs DATABASE_URL to point at PostgreSQL")
    name = (parts.path.lstrip("/") or "parkgate") + f"_bench_{bench}"
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path="/" + name)), name


def recreate_database(admin_url: str, name: str, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str) -> str:
    """Run a manage.py command for the bench; stop the bench with its output if it fails."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout
