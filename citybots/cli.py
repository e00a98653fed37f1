"""citybots: the city's epidemic-response platform — five Telegram bots, the admin panel
and the situation centre over PostgreSQL and Redis."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from subprocess import Popen

from citybots import admin_commands, db_commands, register_commands
from citybots.ambulance_command import add_parser as add_ambulance_parser
from citybots.ambulance_command import ambulance_command
from citybots.commands import command_error
from citybots.demo_command import demo_data
from citybots.embedded import DataDirLock, EmbeddedServerError
from citybots.feeds_command import add_parser as add_feeds_parser
from citybots.feeds_command import feeds_command
from citybots.logs import setup_logging
from citybots.model_command import add_parser as add_model_parser
from citybots.model_command import model_command
from citybots.nlu_command import add_parser as add_nlu_parser
from citybots.nlu_command import nlu_command
from citybots.settings import Settings, SettingsError, load_settings
from services.feeds.specs import FEEDS
from services.migrations import MigrationError
from services.panel import ROLES as PANEL_ROLES

_WORKER_ENV = "CITYBOTS_WORKER"


def _start_workers(settings: Settings, database_url: str, redis_url: str) -> list[Popen[bytes]]:
    """WORKERS - 1 more processes on the same port (SO_REUSEPORT), sharing PostgreSQL and
    Redis; this process is the first worker and owns any embedded servers."""
    env = {**os.environ, _WORKER_ENV: "1", "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    return [
        Popen([sys.executable, "-m", "citybots.cli", "run"], env=env)
        for _ in range(settings.workers - 1)
    ]


async def _run(settings: Settings) -> int:
    from citybots.platform import Platform

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    platform = Platform(settings)
    child = os.environ.get(_WORKER_ENV) == "1"
    lock = DataDirLock(settings.data_dir)
    if not child:  # the workers it starts share its data folder and servers
        lock.acquire()
        print("citybots: starting (the first start initialises the database) ...", flush=True)
    workers: list[Popen[bytes]] = []
    try:
        await platform.start()
        if not child:
            workers = _start_workers(
                settings, platform.infra.database_url, platform.infra.redis_url
            )
            print(platform.summary(), flush=True)
            if workers:
                print(f"  {len(workers) + 1} worker processes share port {platform.port}")
            print(f"\n  started in {platform.started_in:.1f} s", flush=True)
        await stop.wait()
        if not child:
            print("\ncitybots: stopping ...", flush=True)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await asyncio.to_thread(worker.wait, 30)
        await platform.stop()
        lock.release()
    if not child:
        print("citybots: stopped", flush=True)
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
        "sandbox": settings.sandbox_decision(),
        "default_language": settings.default_language,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["status"] == "ok" else 1


def _is_audit_key_refusal(error: BaseException) -> bool:
    """The database refused an audit row: this command has no key or another key than
    the deployment's (AUDIT_CHAIN_KEY); its transaction was rolled back."""
    import asyncpg

    return isinstance(error, asyncpg.InsufficientPrivilegeError) and str(error).startswith(
        "audit_log: "
    )


CLI_EPILOG = """\
the bots (each runs on the built-in Telegram sandbox until it has a token):
  citizen     residents: status colour, venue check-in, visits, disputes, movement
              permits, questions to the 1308 hotline
  staff       venue owners and staff (venues, QR posters, check-in by IIN); police
              and checkpoint officers (permit checks, passings)
  quarantine  home-quarantine patients: consent, phone, live location
  doctor      district doctors: enrol patients, violation alerts, cases
  agent       hotline 1308 agents: citizens' hand-offs, scripts for calls

first steps:
  citybots run                              everything; embedded PostgreSQL and Redis
                                            when DATABASE_URL / REDIS_URL are unset
  citybots demo-data                        a demo city to try every page and bot
  citybots admin create-user NAME --role admin    the first panel account

`citybots COMMAND --help` says more about each command."""


def _describe_subcommands(parser: argparse.ArgumentParser) -> None:
    """Each subcommand's --help opens with the line the list above it shows."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                if sub.description is None and choice.help:
                    sub.description = choice.help
                _describe_subcommands(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citybots",
        description=__doc__,
        epilog=CLI_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the bots, the web app and the scheduler")
    db = commands.add_parser("db", help="database migrations, backups and restores")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("migrate", help="apply pending migrations")
    db_commands.add_parser("status", help="list migrations and whether they are applied")
    db_backup = db_commands.add_parser(
        "backup",
        help="write a consistent backup of the database to FILE (a pg_dump custom archive, "
        "readable by its owner only; FILE is replaced only once the new backup is whole)",
    )
    db_backup.add_argument("file", help="where to write it, e.g. citybots-2026-05-01.dump")
    db_restore = db_commands.add_parser(
        "restore",
        help="restore a backup into an empty database in one transaction, then apply the "
        "migrations it lacks",
    )
    db_restore.add_argument("file", help="a file `citybots db backup` wrote")
    db_restore.add_argument(
        "--force",
        action="store_true",
        help="restore into a database that is not empty, replacing everything it holds",
    )
    demo = commands.add_parser(
        "demo-data",
        help="load the demo city: venues, people, organisations, a checkpoint, officers'"
        " invites, 60 days of history (idempotent, clearly labelled)",
    )
    demo.add_argument("--remove", action="store_true", help="remove every demo row instead")
    commands.add_parser("check", help="report what is reachable and configured")
    importing = commands.add_parser(
        "import", help="import a register or a feed (CSV), or zones (GeoJSON)"
    )
    importing.add_argument(
        "kind", choices=["pcr", "contacts", "phones", "orgs", "pois", "ambulance", "zones", *FEEDS]
    )
    importing.add_argument(
        "file",
        help="CSV: pcr: iin,sampled_at,result_at,result,laboratory; "
        "contacts: iin,registered_at,isolation_end; phones: iin,phone; "
        "orgs: bin,name,activity_code,head_phone,allowed; "
        "pois: kind,name,latitude,longitude,residents (or GeoJSON points with those "
        "properties); ambulance: call_id,called_at,latitude,longitude,address,code,outcome,"
        "hospital,placed_at,system; "
        "zones: GeoJSON polygons in longitude/latitude (properties: name, kind); "
        + "; ".join(f"{name}: {','.join(spec.columns)}" for name, spec in FEEDS.items()),
    )
    importing.add_argument(
        "--zone-kind",
        choices=["district", "sector", "quarantine"],
        help="zones: the kind of features without a kind property",
    )
    importing.add_argument(
        "--valid-from", help="zones: when these versions come into force (default: now)"
    )
    importing.add_argument(
        "--report", help="where to write rejected rows (default FILE.rejected.csv)"
    )
    importing.add_argument(
        "--actor",
        metavar="NAME",
        help="who runs this import (a person, a ticket): written to the audit log with the"
        " operating-system user",
    )
    add_ambulance_parser(commands)
    labs = commands.add_parser("labs", help="laboratories that push results over the API")
    labs_commands = labs.add_subparsers(dest="labs_command", required=True)
    labs_add = labs_commands.add_parser("add", help="add a laboratory and print its API key")
    labs_add.add_argument("name")
    admin = commands.add_parser(
        "admin", help="administration: panel users, doctors' and officers' invites"
    )
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    invite = admin_commands.add_parser(
        "invite-doctor", help="print a one-use invite link to the doctor bot"
    )
    invite.add_argument("--district", required=True, help="the doctor's district")
    invite.add_argument(
        "--duty", action="store_true", help="put the doctor on the district's duty list"
    )
    officer = admin_commands.add_parser(
        "invite-officer",
        help="print a one-use invite link for an officer: police and checkpoint officers"
        " join the staff bot, hotline agents the agent bot",
    )
    officer.add_argument("--role", required=True, choices=["police", "checkpoint", "agent"])
    officer.add_argument("--checkpoint", help="assign the officer to this checkpoint on joining")
    create_user = admin_commands.add_parser(
        "create-user", help="add a user of the admin panel (asks for the password)"
    )
    create_user.add_argument("username")
    create_user.add_argument("--role", required=True, choices=list(PANEL_ROLES))
    create_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    disputes = commands.add_parser("disputes", help="status disputes for registry officers")
    disputes_commands = disputes.add_subparsers(dest="disputes_command", required=True)
    listing = disputes_commands.add_parser("list", help="open disputes (--all for every one)")
    listing.add_argument("--all", action="store_true")
    resolving = disputes_commands.add_parser("resolve", help="decide a dispute")
    resolving.add_argument("id", type=int)
    resolving.add_argument("decision", choices=["uphold", "reject"])
    resolving.add_argument("--officer", required=True, help="your name, for the record")
    resolving.add_argument("--note", required=True, help="why; the citizen sees this")
    resolving.add_argument("--isolation-end", help="corrected isolation end (upheld only)")
    resolving.add_argument(
        "--entered-in-error",
        action="store_true",
        help="the records behind the colour (the positive results of a red, the contact "
        "registrations of a yellow, the negative of a green) were entered in error: they stop "
        "counting (upheld only)",
    )
    exposures = commands.add_parser("exposures", help="exposure notices for epidemiologists")
    exposures.add_argument("--since", help="only notices created since this time")
    zones = commands.add_parser("zones", help="which zones contain a point; points per zone")
    zone_commands = zones.add_subparsers(dest="zones_command", required=True)
    zone_at = zone_commands.add_parser("at", help="the zones (versions in force) around a point")
    zone_at.add_argument("lat", type=float)
    zone_at.add_argument("lon", type=float)
    summary = zone_commands.add_parser("summary", help="points of interest and residents per zone")
    summary.add_argument("--kind", default="sector", choices=["district", "sector", "quarantine"])
    lift = zone_commands.add_parser("lift", help="end a zone's version in force (a zone lifted)")
    lift.add_argument("name")
    lift.add_argument("--kind", default="quarantine", choices=["district", "sector", "quarantine"])
    for sub in (zone_at, summary, lift):
        sub.add_argument("--at", help="the moment (default: now; city time unless an offset)")
    audit = commands.add_parser("audit", help="the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check the audit log's hash chain: exit 1 if a row was changed or removed"
    )
    verify.add_argument(
        "--head",
        metavar="SEQ:HASH",
        help="a head logged ('audit chain: head #SEQ HASH') or printed by verify earlier: it must"
        " still be in the chain, so rows cut off the end are found too",
    )
    rollups = commands.add_parser(
        "rollups", help="the situation centre's hourly and daily counts (a job keeps them current)"
    )
    rollup_commands = rollups.add_subparsers(dest="rollups_command", required=True)
    rollup_commands.add_parser("refresh", help="roll up what changed since the last run")
    rollup_commands.add_parser(
        "rebuild",
        help="recompute every hour that still has raw rows, and every day"
        " (hours whose rows retention removed keep their counts)",
    )
    checkpoints = commands.add_parser("checkpoints", help="checkpoints (roadblocks)")
    checkpoint_commands = checkpoints.add_subparsers(dest="checkpoints_command", required=True)
    checkpoint_commands.add_parser("list", help="checkpoints with their travellers' QR links")
    adding = checkpoint_commands.add_parser("add", help="add a checkpoint")
    adding.add_argument("name")
    adding.add_argument("--lat", type=float, required=True, help="latitude of its map point")
    adding.add_argument("--lon", type=float, required=True, help="longitude of its map point")
    adding.add_argument("--zone", required=True, help="the name of the zone it guards")
    adding.add_argument(
        "--zone-kind", default="quarantine", choices=["district", "sector", "quarantine"]
    )
    adding.add_argument("--register", default="roadblock", choices=["city", "roadblock"])
    add_model_parser(commands)
    add_feeds_parser(commands)
    add_nlu_parser(commands)
    _describe_subcommands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        return command_error(str(error), 2)
    setup_logging(settings.log_level)
    # aiogram takes seconds to import (pydantic models): only after the settings are good.
    from citybots.infrastructure import StartupError

    handlers = {
        "run": _run,
        "check": _check,
        "migrate": db_commands.db_migrate,
        "status": db_commands.db_status,
    }
    with_args = {
        "demo-data": demo_data,
        "import": register_commands.import_file,
        "labs": register_commands.labs_add,
        "ambulance": ambulance_command,
        "admin": admin_commands.admin,
        "disputes": admin_commands.disputes,
        "exposures": admin_commands.exposures,
        "model": model_command,
        "feeds": feeds_command,
        "checkpoints": register_commands.checkpoints,
        "zones": register_commands.zones,
        "rollups": register_commands.rollups,
        "audit": admin_commands.audit,
        "backup": db_commands.db_backup,
        "restore": db_commands.db_restore,
    }
    command = args.db_command if args.command == "db" else args.command
    if command == "nlu":  # no servers and no event loop needed
        return nlu_command(settings, args)
    try:
        if command in with_args:
            return asyncio.run(with_args[command](settings, args))
        return asyncio.run(handlers[command](settings))
    except (StartupError, MigrationError, EmbeddedServerError) as error:
        return command_error(str(error))
    except Exception as error:
        if not _is_audit_key_refusal(error):
            raise
        return command_error(f"{error}; the command stopped there")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
