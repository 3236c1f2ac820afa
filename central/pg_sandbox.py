"""A throw-away PostgreSQL cluster for tests, benchmarks and local development.

The central service is tested against a real PostgreSQL, not a mock, because the
properties that matter (two workers behaving as one, ``ON CONFLICT`` races,
advisory-locked migrations) only exist in the real server. CI installs the
Debian ``postgresql`` package and runs as root; ``postgres`` refuses to run as
root, so the cluster is initialised and started as the ``postgres`` OS user in
that case, and as the current user otherwise. Durability is switched off
(``fsync=off``): the cluster is deleted afterwards, and it makes the suite fast.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL server binaries are not installed or the cluster did not start."""


def find_bindir() -> Path:
    """Locate ``initdb``/``pg_ctl``: ``$VITRINE_PG_BINDIR``, Debian layout, then ``$PATH``."""
    candidates: list[str] = []
    if env := os.environ.get("VITRINE_PG_BINDIR"):
        candidates.append(env)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if which := shutil.which("pg_ctl"):
        candidates.append(str(Path(which).parent))
    for cand in candidates:
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin "
        "or $PATH; install them (Debian: apt-get install postgresql) or set VITRINE_PG_BINDIR"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgCluster:
    """A running cluster; :attr:`url` connects as the superuser to database ``vitrine``."""

    data_dir: Path
    socket_dir: Path
    port: int
    user: str
    bindir: Path
    run_as: str | None

    @property
    def url(self) -> str:
        return self.url_for("vitrine")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database (one per test module keeps tests independent)."""
        import psycopg

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def create_schema(self, name: str) -> str:
        """A URL of database ``vitrine`` whose search_path is a new empty schema ``name``.

        Tests get an isolated namespace each for the cost of ``CREATE SCHEMA``
        (milliseconds) instead of ``CREATE DATABASE`` (half a second).
        """
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url}?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        _run(self._cmd("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"),
             self.run_as, check=False)

    def destroy(self) -> None:
        """Stop the server and delete the cluster's files."""
        self.stop()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def _cmd(self, tool: str, *args: str) -> list[str]:
        return [str(self.bindir / tool), *args]


def _run(cmd: list[str], run_as: str | None, check: bool = True) -> subprocess.CompletedProcess:
    if run_as:
        cmd = ["runuser", "-u", run_as, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise PostgresUnavailable(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_cluster(base_dir: Path | None = None, max_connections: int = 100) -> PgCluster:
    """initdb + start a cluster on a free port of 127.0.0.1, unix socket in its own dir.

    ``base_dir`` defaults to a new directory in the system temp dir: when running
    as root the ``postgres`` user must be able to reach it, which rules out
    pytest's 0700 per-user temp tree.
    """
    bindir = find_bindir()
    base = Path(base_dir or tempfile.mkdtemp(prefix="vitrine-pg-"))
    base.mkdir(parents=True, exist_ok=True)
    run_as: str | None = None
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        run_as = user = "postgres"
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresUnavailable(
                "running as root but there is no 'postgres' OS user to run the server"
            ) from exc
        os.chmod(base, 0o755)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data_dir, socket_dir = base / "data", base / "sock"
    for d in (data_dir, socket_dir):
        d.mkdir(exist_ok=True)
        if run_as:
            os.chown(d, pw.pw_uid, pw.pw_gid)
    _run([str(bindir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", user,
          "-E", "UTF8", "--no-sync"], run_as)
    port = _free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={socket_dir}"
            f" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            f" -c max_connections={max_connections} -c shared_buffers=256MB")
    cluster = PgCluster(data_dir, socket_dir, port, user, bindir, run_as)
    _run([str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(base / "server.log"),
          "-o", opts, "-w", "-t", "60", "start"], run_as)
    deadline = time.monotonic() + 30
    while True:
        try:
            cluster.create_database("vitrine")
            return cluster
        except Exception as exc:  # server still starting up
            if time.monotonic() > deadline:
                cluster.stop()
                log = (base / "server.log").read_text(errors="replace")[-2000:]
                raise PostgresUnavailable(
                    f"cluster did not accept connections: {exc}\n{log}") from exc
            time.sleep(0.1)
