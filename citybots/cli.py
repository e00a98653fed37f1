"""The `citybots` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from citybots.embedded import EmbeddedServerError
from citybots.logs import setup_logging
from citybots.settings import Settings, SettingsError, load_settings
from services.demo import DEMO_PEOPLE, load_demo_data
from services.migrations import MigrationError, migrate, status


async def _run(settings: Settings) -> int:
    from citybots.platform import Platform

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    platform = Platform(settings)
    print("citybots: starting (the first start initialises the database) ...", flush=True)
    await platform.start()
    try:
        print(platform.summary(), flush=True)
        print(f"\n  started in {platform.started_in:.1f} s", flush=True)
        await stop.wait()
        print("\ncitybots: stopping ...", flush=True)
    finally:
        await platform.stop()
    print("citybots: stopped", flush=True)
    return 0


async def _db_migrate(settings: Settings) -> int:
    from citybots.platform import database

    async with database(settings) as conn:
        applied = await migrate(conn)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


async def _db_status(settings: Settings) -> int:
    from citybots.platform import database

    async with database(settings) as conn:
        states = await status(conn)
    for state in states:
        when = f"applied {state.applied_at:%Y-%m-%d %H:%M}" if state.applied_at else "pending"
        print(f"{state.name:<40} {when}{'  EDITED AFTER APPLYING' if state.edited else ''}")
    return 1 if any(s.edited for s in states) else 0


async def _demo_data(settings: Settings) -> int:
    from citybots.platform import database

    async with database(settings) as conn:
        await migrate(conn)
        counts = await load_demo_data(conn)
    print("demo city loaded (every name starts with [DEMO]; loading again changes nothing):")
    for table, count in counts.items():
        print(f"  {table:<20} {count}")
    print("demo IINs (births in the 1800s, so never a living resident's):")
    for person in DEMO_PEOPLE:
        print(f"  {person.iin}  {person.key:<7} {person.story}")
    print("demo doctor invite code: DEMO-DOCTOR")
    return 0


async def _check(settings: Settings) -> int:
    """Start everything once, report, stop: what is reachable and configured."""
    from citybots.platform import Platform

    platform = Platform(settings.model_copy(update={"admin_port": 0}))
    try:
        await platform.start()
        report = await platform.health()
    finally:
        await platform.stop()
    report["settings"] = {
        "database": "DATABASE_URL" if settings.database_url else "embedded",
        "redis": "REDIS_URL" if settings.redis_url else "embedded",
        "mode": "webhook" if settings.webhook_mode else "polling",
        "sandbox_bots": settings.sandbox_bots,
        "default_language": settings.default_language,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["status"] == "ok" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citybots", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the bots, the web app and the scheduler")
    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("migrate", help="apply pending migrations")
    db_commands.add_parser("status", help="list migrations and whether they are applied")
    commands.add_parser("demo-data", help="load the demo city (idempotent, clearly labelled)")
    commands.add_parser("check", help="report what is reachable and configured")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"citybots: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    # aiogram takes seconds to import (pydantic models): only after the settings are good.
    from citybots.platform import StartupError

    handlers = {
        "run": _run,
        "check": _check,
        "demo-data": _demo_data,
        "migrate": _db_migrate,
        "status": _db_status,
    }
    command = args.db_command if args.command == "db" else args.command
    try:
        return asyncio.run(handlers[command](settings))
    except (StartupError, MigrationError, EmbeddedServerError) as error:
        print(f"citybots: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
