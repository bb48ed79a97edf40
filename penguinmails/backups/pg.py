"""The PostgreSQL client tools (pg_dump, pg_restore, psql) and the queries backups need.

The password reaches the tools through PGPASSWORD in their environment, never their command
line (which `ps` shows). The tools must be at least the server's major version: an older
pg_dump refuses a newer server, and we say so before starting rather than after.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from django.conf import settings
from django.db import connections
from psycopg import sql

from penguinmails.errors import DomainError

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


class PostgresToolError(DomainError):
    status_code = 503
    code = "postgres_tool_error"


def db_settings(dbname: str | None = None) -> dict[str, Any]:
    """psycopg keyword arguments for the default database (or another on the same server)."""
    conf = connections["default"].settings_dict
    options = conf.get("OPTIONS") or {}
    kwargs: dict[str, Any] = {
        "dbname": dbname or conf["NAME"],
        "user": conf.get("USER") or None,
        "password": conf.get("PASSWORD") or None,
        "host": conf.get("HOST") or None,
        "port": str(conf["PORT"]) if conf.get("PORT") else None,
    }
    if options.get("sslmode"):
        kwargs["sslmode"] = options["sslmode"]
    return {k: v for k, v in kwargs.items() if v is not None}


def tool_env(dbname: str | None = None) -> dict[str, str]:
    names = {
        "dbname": "PGDATABASE",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "host": "PGHOST",
        "port": "PGPORT",
        "sslmode": "PGSSLMODE",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in db_settings(dbname).items():
        env[names[key]] = str(value)
    return env


def connect(dbname: str | None = None, **options: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(**db_settings(dbname), **options)


def tool(name: str) -> str:
    folder = settings.BACKUP_PG_BIN_DIR
    found = str(Path(folder) / name) if folder else shutil.which(name)
    if not found or not Path(found).exists():
        raise PostgresToolError(
            f"{name} is not installed (apt-get install postgresql-client, or set "
            "BACKUP_PG_BIN_DIR to the folder that holds it)."
        )
    return found


def _major(text: str) -> int:
    match = re.search(r"(\d+)(?:\.\d+)?", text)
    return int(match.group(1)) if match else 0


def check_versions() -> tuple[int, int]:
    """(client major, server major); refuses a client older than the server."""
    out = subprocess.run(
        [tool("pg_dump"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    # "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)": the first number after the name.
    client = _major(out.partition(")")[2] or out)
    with connect() as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    server = int(row[0]) // 10000 if row else 0
    if client < server:
        raise PostgresToolError(
            f"pg_dump is version {client} but the server is {server}: install "
            f"postgresql-client-{server} (or set BACKUP_PG_BIN_DIR)."
        )
    return client, server


def schemas(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', "
        "'information_schema') AND nspname NOT LIKE 'pg\\_%' ORDER BY nspname"
    ).fetchall()
    return [r[0] for r in rows]


def count_rows(conn: psycopg.Connection[Any], only: str | None = None) -> dict[str, dict[str, int]]:
    """{schema: {table: exact rows}} of every table (or of one schema's), one query a schema."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
        "'information_schema') AND n.nspname NOT LIKE 'pg\\_%%' AND (%s::text IS NULL OR "
        "n.nspname = %s) ORDER BY 1, 2",
        [only, only],
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for schema, table in rows:
        tables.setdefault(schema, []).append(table)
    counts: dict[str, dict[str, int]] = {}
    for schema, names in tables.items():
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}, count(*) FROM {}.{}").format(
                sql.Literal(name), sql.Identifier(schema), sql.Identifier(name)
            )
            for name in names
        )
        counts[schema] = {name: int(n) for name, n in conn.execute(query).fetchall()}
    return counts


@dataclass
class Tool:
    """A running client tool whose stderr is collected on a thread (never blocking its stdout)."""

    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    on_line: Callable[[str], None] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> Tool:
        def drain() -> None:
            assert self.process.stderr is not None
            for raw in self.process.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.lines.append(line)
                if self.on_line:
                    self.on_line(line)

        self._reader = threading.Thread(target=drain, daemon=True)
        self._reader.start()
        return self

    def finish(self, what: str) -> None:
        code = self.process.wait()
        if self._reader:
            self._reader.join()
        if code != 0:
            errors = [line for line in self.lines if "error" in line.lower()] or self.lines
            raise PostgresToolError(f"{what} failed (exit {code}): " + " | ".join(errors[-5:]))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def spawn(
    args: list[str],
    *,
    dbname: str | None = None,
    stdin: IO[bytes] | int | None = None,
    stdout: IO[bytes] | int | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Tool:
    process = subprocess.Popen(
        args, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=tool_env(dbname)
    )
    return Tool(process, on_line=on_line).start()


@contextmanager
def dump(
    *, snapshot: str, schema: str | None, on_line: Callable[[str], None] | None = None
) -> Iterator[Tool]:
    """pg_dump -Fc of the database (or one schema) in `snapshot`; output on `.process.stdout`."""
    args = [tool("pg_dump"), "--format=custom", "--verbose", f"--snapshot={snapshot}"]
    if schema:
        args.append(f'--schema="{schema}"')  # quoted: the exact name, not a pattern
    running = spawn(args, stdout=subprocess.PIPE, on_line=on_line)
    try:
        yield running
    except BaseException:
        running.kill()
        raise


def restore_in_one_transaction(
    archive: Path,
    *,
    before: list[str],
    after: list[str],
    schema: str | None,
    on_line: Callable[[str], None] | None,
) -> None:
    """pg_restore's SQL for `archive` (or for one schema of it), run by psql in ONE transaction
    between `before` and `after` statements: all of it happens or none.

    The transaction is ours, not psql's `--single-transaction`: psql would commit whatever it
    had read if pg_restore died half-way (its input simply ends). Here COMMIT is written only
    after pg_restore has exited 0; otherwise psql's input ends inside the transaction and
    PostgreSQL rolls it back. ON_ERROR_STOP makes psql stop (and roll back) at the first error.
    """
    args = [tool("pg_restore"), "--file=-"]
    if schema:
        args.append(f"--schema={schema}")  # pg_restore takes the exact name here
    restore = spawn([*args, str(archive)], stdout=subprocess.PIPE, on_line=on_line)
    psql = spawn(
        [tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        on_line=on_line,
    )
    assert restore.process.stdout is not None and psql.process.stdin is not None
    sink = psql.process.stdin
    try:
        sink.write(_statements(["BEGIN", *before]))
        shutil.copyfileobj(restore.process.stdout, sink, 1024 * 1024)
        restore.finish("pg_restore")  # raises before COMMIT is written
        sink.write(_statements([*after, "COMMIT"]))
    except BrokenPipeError:
        restore.kill()  # psql stopped at an error: its message is the one to report
    except BaseException:
        restore.kill()
        _close(sink)  # input ends inside the transaction: rolled back
        psql.process.wait()
        raise
    finally:
        _close(sink)
    psql.finish("psql (restore, rolled back)")


def _close(sink: IO[bytes]) -> None:
    with contextlib.suppress(BrokenPipeError):
        sink.close()


def _statements(statements: list[str]) -> bytes:
    return "".join(f"{s};\n" for s in statements).encode()


def restore_into(archive: Path, dbname: str, on_line: Callable[[str], None] | None) -> None:
    """pg_restore into another (empty, scratch) database on the same server."""
    args = [
        tool("pg_restore"),
        "--no-owner",
        "--no-acl",
        "--exit-on-error",
        "--verbose",
        f"--dbname={dbname}",
        str(archive),
    ]
    spawn(args, dbname=dbname, on_line=on_line).finish("pg_restore (scratch database)")
