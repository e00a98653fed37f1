"""The embedded servers are closed to the host's other users: PostgreSQL asks everyone for
a SCRAM password (no unix socket, no trust), the application's role is not a superuser,
Redis asks for a password and has CONFIG switched off; the passwords are 0600 files in
0700 folders. A cluster made before passwords is locked down on its next start."""

import asyncio
import os
import shutil
import stat
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from citybots.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, pg_bin_dir
from services.migrations import migrate

# Run by another local user with nothing but the system's Python: what a stranger with a
# shell on the host gets from each server without a password.
PROBE = textwrap.dedent(
    """
    import socket, struct, sys
    pg_port, redis_port = int(sys.argv[1]), int(sys.argv[2])
    with socket.create_connection(("127.0.0.1", pg_port), timeout=10) as pg:
        params = b"user\\0postgres\\0database\\0citybots\\0\\0"
        pg.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        kind, _, code = struct.unpack("!cii", pg.recv(9))
        # 'R' with 0 would be "authentication ok" (trust); 10 asks for a SCRAM password.
        print("postgres", kind.decode(), code)
    with socket.create_connection(("127.0.0.1", redis_port), timeout=10) as rd:
        for command in (b"GET x", b"CONFIG SET dir /etc"):
            rd.sendall(command + b"\\r\\n")
            print(rd.recv(200).decode().split("\\r\\n")[0])
    for path in sys.argv[3:]:
        try:
            open(path).read()
            print("read", path)
        except OSError as error:
            print("refused", type(error).__name__)
    """
)


def _as_another_user() -> list[str]:
    """A command prefix that runs as `nobody` (when we may switch users: root)."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    return []  # the same probe as ourselves: it still has no password


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def locked_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EmbeddedPostgres, EmbeddedRedis]]:
    base = tmp_path_factory.mktemp("locked")
    pg = EmbeddedPostgres(base / "postgres", fast=True)
    rd = EmbeddedRedis(base / "redis", persist=False)
    try:
        pg.start()
        rd.start()
        yield pg, rd
    finally:
        rd.stop()
        pg.stop()


def test_another_local_user_is_refused_by_both_servers_and_cannot_read_the_passwords(
    locked_servers: tuple[EmbeddedPostgres, EmbeddedRedis],
) -> None:
    pg, rd = locked_servers
    secrets = [pg.superuser_password_file, pg.app_password_file, rd.password_file]
    probe = subprocess.run(
        [*_as_another_user(), "/usr/bin/python3", "-c", PROBE, str(pg.port), str(rd.port)]
        + [str(p) for p in secrets],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        check=True,
    )
    lines = probe.stdout.splitlines()
    assert lines[0] == "postgres R 10", probe.stdout
    assert lines[1].startswith("-NOAUTH"), probe.stdout
    assert lines[2].startswith("-ERR unknown command `CONFIG`"), probe.stdout
    if _as_another_user():
        assert lines[3:] == ["refused PermissionError"] * 3, probe.stdout
    for path in secrets:
        assert _mode(path) == 0o600
        assert _mode(path.parent) == 0o700
    assert not list(pg.data_dir.rglob(".s.PGSQL.*"))  # no unix socket to try either


async def test_the_application_role_is_no_superuser_and_cannot_run_programs(
    locked_servers: tuple[EmbeddedPostgres, EmbeddedRedis],
) -> None:
    pg, _ = locked_servers
    conn = await asyncpg.connect(pg.url)
    try:
        await migrate(conn)  # every migration runs as the application's role
        role = await conn.fetchrow(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname = current_user"
        )
        assert tuple(role) == ("citybots", False, False, False)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("COPY (SELECT 1) TO PROGRAM 'id'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT pg_read_file('postgresql.conf')")
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://postgres:guess@127.0.0.1:{pg.port}/postgres")


def test_redis_wants_its_password_and_has_no_config_command(
    locked_servers: tuple[EmbeddedPostgres, EmbeddedRedis],
) -> None:
    _, rd = locked_servers
    with redis.Redis(port=rd.port) as stranger, pytest.raises(redis.AuthenticationError):
        stranger.ping()
    with redis.Redis.from_url(rd.url) as client:
        assert client.ping()
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.config_set("dir", "/etc")
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.execute_command("DEBUG", "SLEEP", "0")
    assert _mode(rd.data_dir / "redis.conf") == 0o600


async def test_a_cluster_made_before_passwords_is_locked_down_on_its_next_start(
    tmp_path: Path,
) -> None:
    old = EmbeddedPostgres(tmp_path / "postgres", fast=True)
    # As the previous version made it: trust, the application connecting as `postgres`.
    old.data_dir.mkdir(mode=0o700)
    old.pgdata.mkdir()
    old._prepare_permissions()
    old._run(
        [str(pg_bin_dir() / "initdb"), "-D", str(old.pgdata), "-U", "postgres", "--auth=trust",
         "--encoding=UTF8", "--locale=C", "--no-instructions"]
    )  # fmt: skip
    old.port = free_port()
    old._pg_ctl_start()
    trusted = f"postgresql://postgres@127.0.0.1:{old.port}"
    admin = await asyncpg.connect(trusted + "/postgres")
    await admin.execute("CREATE DATABASE citybots")
    await admin.close()
    conn = await asyncpg.connect(trusted + "/citybots")
    await migrate(conn)
    await conn.execute("CREATE TABLE old_notes (id serial PRIMARY KEY, note text)")
    await conn.execute("CREATE VIEW old_view AS SELECT note FROM old_notes")
    await conn.execute("INSERT INTO old_notes (note) VALUES ('old')")
    await conn.close()
    await asyncio.to_thread(old.stop)

    new = EmbeddedPostgres(tmp_path / "postgres", fast=True)
    await asyncio.to_thread(new.start)
    try:
        conn = await asyncpg.connect(new.url)
        try:
            assert await migrate(conn) == []
            await conn.execute("INSERT INTO old_notes (note) VALUES ('new')")
            assert await conn.fetchval("SELECT string_agg(note, ',') FROM old_view") == "old,new"
            not_ours = await conn.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> 'citybots'"
            )
            assert not_ours == 0
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{new.port}/postgres")
    finally:
        await asyncio.to_thread(new.stop)
