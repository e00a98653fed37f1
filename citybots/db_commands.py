"""`citybots db ...`: migrations, backups and restores."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from citybots.commands import command_error, stop_on_sigterm
from citybots.settings import Settings
from services.migrations import migrate, status


async def db_migrate(settings: Settings) -> int:
    from citybots.infrastructure import database

    async with database(settings) as conn:
        applied = await migrate(conn)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


async def db_status(settings: Settings) -> int:
    from citybots.infrastructure import database

    async with database(settings) as conn:
        states = await status(conn)
    for state in states:
        when = f"applied {state.applied_at:%Y-%m-%d %H:%M}" if state.applied_at else "pending"
        print(f"{state.name:<40} {when}{'  EDITED AFTER APPLYING' if state.edited else ''}")
    return 1 if any(s.edited for s in states) else 0


def _megabytes(size: int) -> str:
    return f"{size / 1024**2:,.1f} MB" if size >= 100 * 1024 else f"{size / 1024:,.1f} kB"


async def db_backup(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.backup import BackupError, backup
    from citybots.infrastructure import database_url

    stop_on_sigterm()
    try:
        async with database_url(settings) as url:
            report = await backup(url, Path(args.file))
    except BackupError as error:
        return command_error(f"{error}; no backup was written")
    except asyncio.CancelledError:
        return command_error("stopped; no backup was written", 143)
    print(
        f"backup written: {report.path} ({_megabytes(report.bytes)}, {report.tables} tables, "
        f"migrations up to {report.schema or 'none'}, PostgreSQL {report.server_version}, "
        f"{report.seconds:.1f} s); readable by its owner only"
    )
    print(f"restore it with: citybots db restore {report.path}")
    return 0


async def db_restore(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import audit_chain_key, command_infrastructure, make_redis
    from citybots.pg_tools import BackupError
    from citybots.restore import restore

    stop_on_sigterm()
    async with command_infrastructure(settings) as infra:
        try:
            report = await restore(
                infra.database_url,
                Path(args.file),
                force=args.force,
                audit_key=audit_chain_key(settings),
            )
        except BackupError as error:
            return command_error(str(error))
        except asyncio.CancelledError:
            return command_error("stopped; the database was not changed", 143)
        # Redis holds only what may be lost: caches of the data as it was before the
        # restore (a person's colour, say) must not outlive it.
        redis = make_redis(infra.redis_url, 2)
        try:
            await redis.flushdb()
            emptied = "Redis emptied (its caches were of the data before the restore)"
        except Exception as error:
            emptied = (
                f"Redis could not be emptied ({type(error).__name__}): empty it (FLUSHDB) "
                "before starting, or its caches will show the data as it was before"
            )
        finally:
            await redis.aclose()
    archive = report.archive
    print(
        f"restored {Path(args.file).name} (made {archive.created} from PostgreSQL "
        f"{archive.server_version}, migrations up to {archive.schema}) "
        f"in {report.seconds:.1f} s"
    )
    if report.replaced is not None:
        print(f"replaced what the database held: {report.replaced.describe()}")
    print(
        "migrations applied after it: " + ", ".join(report.applied)
        if report.applied
        else "its schema is this version's: no migration to apply"
    )
    print(emptied)
    print("check the audit log with this deployment's AUDIT_CHAIN_KEY: citybots audit verify")
    return 0
