"""A throw-away PostgreSQL 15 cluster on a free loopback port, and streaming replicas of it,
for tests that stop a database or need one of each kind."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.processes import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Postgres:
    """A throw-away PostgreSQL cluster with PostGIS on a free loopback port.

    PostgreSQL refuses to run as root: as root it runs as the `postgres` user, in a folder that
    user owns (pytest's temporary folders are private to root)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="fieldline-pg-"))
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/fieldline"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        # initdb's pg_hba.conf trusts loopback replication connections too.
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--no-sync",
        )  # fmt: skip

    def init_standby_of(self, primary: Postgres) -> None:
        """A base backup of `primary` with its standby settings (-R): started, it is a hot
        standby that streams from the primary and answers read-only queries."""
        self._run(
            str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c wal_level=replica -c hot_standby=on"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
