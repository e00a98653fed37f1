"""citybots: the city's epidemic-response platform — five Telegram bots, the admin panel
and the situation centre over PostgreSQL and Redis."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import signal
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import Popen
from zoneinfo import ZoneInfo

from citybots.ambulance_command import add_parser as add_ambulance_parser
from citybots.ambulance_command import ambulance_command
from citybots.embedded import DataDirLock, EmbeddedServerError
from citybots.feeds_command import add_parser as add_feeds_parser
from citybots.feeds_command import feeds_command
from citybots.logs import setup_logging
from citybots.model_command import add_parser as add_model_parser
from citybots.model_command import model_command
from citybots.nlu_command import add_parser as add_nlu_parser
from citybots.nlu_command import nlu_command
from citybots.settings import Settings, SettingsError, load_settings
from services.demo import (
    DEMO_BIN,
    DEMO_HEAD_PHONE,
    DEMO_PEOPLE,
    DEMO_VENUE_KEYS,
    demo_token,
    load_demo_data,
)
from services.feeds.specs import FEEDS
from services.migrations import MigrationError, migrate, status
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
            assert platform.infra is not None
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


def _megabytes(size: int) -> str:
    return f"{size / 1024**2:,.1f} MB" if size >= 100 * 1024 else f"{size / 1024:,.1f} kB"


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd, `docker stop`) stops the command as Ctrl-C does, through its
    clean-up: a half-written backup removed, a restore's transaction rolled back."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def _db_backup(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.backup import BackupError, backup
    from citybots.platform import database_url

    _stop_on_sigterm()
    try:
        async with database_url(settings) as url:
            report = await backup(url, Path(args.file))
    except BackupError as error:
        print(f"citybots: {error}; no backup was written", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        print("citybots: stopped; no backup was written", file=sys.stderr)
        return 143
    print(
        f"backup written: {report.path} ({_megabytes(report.bytes)}, {report.tables} tables, "
        f"migrations up to {report.schema or 'none'}, PostgreSQL {report.server_version}, "
        f"{report.seconds:.1f} s); readable by its owner only"
    )
    print(f"restore it with: citybots db restore {report.path}")
    return 0


async def _db_restore(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.backup import BackupError, restore
    from citybots.platform import audit_chain_key, command_infrastructure, make_redis

    _stop_on_sigterm()
    async with command_infrastructure(settings) as infra:
        try:
            report = await restore(
                infra.database_url,
                Path(args.file),
                force=args.force,
                audit_key=audit_chain_key(settings),
            )
        except BackupError as error:
            print(f"citybots: {error}", file=sys.stderr)
            return 1
        except asyncio.CancelledError:
            print("citybots: stopped; the database was not changed", file=sys.stderr)
            return 143
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


async def _demo_data(settings: Settings, args: argparse.Namespace) -> int:
    import secrets

    from citybots.platform import bot_username, command_services
    from flows.hotline import DISTRICTS
    from flows.hotline.call_scripts import scripts
    from services.demo import (
        DEMO_CHECKPOINT,
        DEMO_PERMITS_BIN,
        DEMO_PERMITS_HEAD_PHONE,
        DEMO_PERMITS_OFFICER,
        remove_demo_data,
    )
    from services.feeds.demo import load_demo_feeds
    from services.panel import PanelError

    async with command_services(settings) as services:
        if args.remove:
            async with services.statuses.pool.acquire() as conn:
                removed = await remove_demo_data(conn)
            await services.statuses.invalidate(person.iin for person in DEMO_PEOPLE)
            await services.rollups.refresh(rebuild=True)
            await services.ambulance.purge(timedelta(days=settings.ambulance_retention_days))
            print("demo rows removed (the situation centre's counts rebuilt):")
            for table, count in removed.items():
                print(f"  {table:<20} {count}")
            return 0
        topics = [script.topic for script in scripts().values()] + ["faq_vaccine"]
        async with services.statuses.pool.acquire() as conn:
            counts = await load_demo_data(
                conn, topics=topics, districts=DISTRICTS, timezone=settings.city_timezone
            )
        counts["feed_records"] = await load_demo_feeds(
            services.feeds.importer, datetime.now(ZoneInfo(settings.city_timezone)).date()
        )
        await services.statuses.invalidate(person.iin for person in DEMO_PEOPLE)
        await services.rollups.refresh()
        await services.ambulance.update_clusters()
        doctor_invite = await services.quarantine.create_doctor_invite(
            "Almaly", on_duty=True, created_by="demo-data"
        )
        checkpoint = await services.checkpoints.by_name(DEMO_CHECKPOINT)
        assert checkpoint is not None
        officer_invite = await services.permits.create_officer_invite(
            "checkpoint", created_by="demo-data", checkpoint_id=checkpoint.id
        )
        agent_invite = await services.permits.create_officer_invite(
            "agent", created_by="demo-data"
        )
        password = secrets.token_urlsafe(12)
        try:
            await services.panel.create_user(
                DEMO_PERMITS_OFFICER, "permits_officer", password, actor="demo-data"
            )
            await services.panel.pool.execute(
                "UPDATE panel_users SET demo_key = 'panel:permits' WHERE username = $1",
                DEMO_PERMITS_OFFICER,
            )
            officer_login = f"password {password} (shown once)"
        except PanelError:
            officer_login = "created by an earlier demo-data; its password was shown then"
        usernames = {bot: await bot_username(settings, bot) for bot in ("staff", "agent")}
    print("demo city loaded (every name starts with [DEMO]; loading again changes nothing;")
    print("citybots demo-data --remove takes it all away):")
    for table, count in counts.items():
        print(f"  {table:<20} {count}")
    print("demo people (IINs encode births in the 1800s, so never a living resident's);")
    print("in the citizen bot share the phone, then type the IIN:")
    for person in DEMO_PEOPLE:
        print(f"  IIN {person.iin}  phone {person.phone}  {person.key:<7} {person.story}")
    print("demo venue QR codes: send these to the citizen bot (the sandbox page's text box):")
    for key in DEMO_VENUE_KEYS:
        print(f"  /start {demo_token(key, 'entry')}    /start {demo_token(key, 'exit')}")
    print("register a venue: in the staff bot «Register a venue» with the BIN")
    print(f"  {DEMO_BIN} (on the organisations register); then My venues -> the venue ->")
    print(f"  Verify, and share the phone {DEMO_HEAD_PHONE} (the head on the register),")
    print("  for check-in by IIN")
    print("permits: in the citizen bot «Permits for my organisation» with the BIN")
    print(f"  {DEMO_PERMITS_BIN} and the head's phone {DEMO_PERMITS_HEAD_PHONE}; the panel's")
    print(f"  permits officer: user {DEMO_PERMITS_OFFICER}, {officer_login}")
    print(f"checkpoint {DEMO_CHECKPOINT}: join as its officer (one use, 7 days):")
    print(f"  https://t.me/{usernames['staff']}?start={officer_invite}")
    print(f"  (in the sandbox: send '/start {officer_invite}' to the staff bot)")
    print("a hotline agent (one use, 7 days):")
    print(f"  https://t.me/{usernames['agent']}?start={agent_invite}")
    print(f"  (in the sandbox: send '/start {agent_invite}' to the agent bot)")
    print("a doctor's invite (one use, 7 days): send this to the doctor bot, then enrol a")
    print("patient and open the patient's invite in the quarantine bot as another user:")
    print(f"  /start {doctor_invite}")
    print("the situation centre, Hotline, Checkpoints, Permits and Daily indicators pages")
    print("show 60 days of demo history up to yesterday")
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


def _cli_actor(named: str | None) -> str:
    """Who runs a command, for the audit log: the operating-system user (from the process's
    user id, not from $USER, which the caller sets) and the name given with --actor."""
    import pwd

    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = f"uid {os.geteuid()}"
    return f"cli:{user}" + (f" as {named[:100]}" if named else "")


async def _import_zones(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from citybots.platform import command_services
    from geofence.zones import ZoneError, parse_zones
    from services.zones import ZoneImportError

    try:
        valid_from = (
            datetime.fromisoformat(args.valid_from) if args.valid_from else datetime.now(UTC)
        )
    except ValueError:
        print(f"citybots: --valid-from: not a time: {args.valid_from!r}", file=sys.stderr)
        return 2
    if valid_from.tzinfo is None:
        valid_from = valid_from.replace(tzinfo=ZoneInfo(settings.city_timezone))
    try:
        shapes = parse_zones(await asyncio.to_thread(path.read_bytes), kind=args.zone_kind)
    except ZoneError as error:
        print(f"citybots: {path.name}: {error}; nothing imported", file=sys.stderr)
        return 1
    async with command_services(settings) as services:
        try:
            result = await services.zones.import_shapes(
                shapes,
                valid_from=valid_from,
                actor=_cli_actor(args.actor),
                source=f"file:{path.name}",
            )
        except ZoneImportError as error:
            print(f"citybots: {error}; nothing imported", file=sys.stderr)
            return 1
    print(
        f"{len(shapes)} zones: {result.added} new, {result.replaced} new versions, "
        f"{result.unchanged} unchanged; in force from {valid_from:%Y-%m-%d %H:%M %Z}"
    )
    return 0


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import command_services
    from citybots.progress import ProgressLine
    from services.registry import CsvSource

    path = Path(args.file)
    if not await asyncio.to_thread(path.is_file):
        print(f"citybots: no such file: {path}", file=sys.stderr)
        return 2
    if args.kind == "zones":
        return await _import_zones(settings, args, path)
    source = CsvSource(path)
    progress = ProgressLine(f"importing {path.name}", source.fraction_read)
    rows: Iterable[tuple[int, list[str] | None]] = source
    if args.kind == "pois" and path.suffix.lower() in (".geojson", ".json"):
        from geofence.points import point_rows

        rows = iter(point_rows(await asyncio.to_thread(path.read_bytes)))
    size = (await asyncio.to_thread(path.stat)).st_size
    _stop_on_sigterm()  # a stopped import still writes its end to the audit log
    async with command_services(settings) as services:
        importer = services.feeds.importer if args.kind in FEEDS else services.importer
        report = await importer.import_rows(
            args.kind,
            rows,
            source=f"file:{path.name}",
            actor=_cli_actor(args.actor),
            about={"file": path.name, "bytes": size, "actor": args.actor},
            progress=progress,
        )
        if args.kind == "ambulance" and report.accepted:
            run = await services.ambulance.update_clusters()
            print(f"{len(run.new)} new clusters of calls")
    progress(report.rows, final=True)
    report_path = Path(args.report) if args.report else path.with_suffix(".rejected.csv")
    corrections = ""
    if report.corrected or report.withdrawn:
        corrections = f"{report.corrected:,} corrected, {report.withdrawn:,} withdrawn, "
    print(
        f"{report.rows:,} rows: {report.accepted:,} added, {corrections}"
        f"{report.duplicates:,} already known, {report.rejected_total:,} rejected "
        f"({report.seconds:.1f} s, {report.rows / max(report.seconds, 1e-9):,.0f} rows/s)"
    )
    if report.positives:
        print(f"{len(report.positives):,} new positive results: exposure search done")
    if report.rejected:
        report.write_rejected(report_path)
        print(f"rejected rows, with line numbers and reasons: {report_path}")
    return 0


def _when(raw: str | None, settings: Settings) -> datetime:
    moment = datetime.fromisoformat(raw) if raw else datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(settings.city_timezone))


async def _zones(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import command_services
    from services.validation import InvalidInput, parse_coordinates

    try:
        at = _when(args.at, settings)
    except ValueError:
        print(f"citybots: --at: not a time: {args.at!r}", file=sys.stderr)
        return 2
    async with command_services(settings) as services:
        if args.zones_command == "at":
            try:
                point = parse_coordinates(args.lat, args.lon)
            except InvalidInput as error:
                print(f"citybots: not a place: {error.code}", file=sys.stderr)
                return 2
            hits = await services.zones.zones_at(point.longitude, point.latitude, at)
            for hit in hits:
                print(f"{hit.kind:<10} {hit.name}  (version {hit.version})")
            if not hits:
                print("in no zone")
            return 0
        if args.zones_command == "lift":
            lifted = await services.zones.lift(args.kind, args.name, at=at, actor="cli")
            if not lifted:
                print(
                    f"citybots: no {args.kind} zone {args.name!r} in force then", file=sys.stderr
                )
                return 1
            print(f"{args.kind} zone {args.name!r} lifted from {at:%Y-%m-%d %H:%M %Z}")
            return 0
        summaries = await services.zones.points_per_zone(args.kind, at)
    for summary in summaries:
        points = ", ".join(f"{kind} {count}" for kind, count in sorted(summary.points.items()))
        print(
            f"{summary.name} (v{summary.version}): {points or 'no points'}; "
            f"{summary.residents:,} residents"
        )
    if not summaries:
        print(f"no {args.kind} zones in force")
    return 0


async def _labs_add(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import command_services
    from services.labs import LabError

    async with command_services(settings) as services:
        try:
            key = await services.labs.add(args.name)
        except LabError as error:
            print(f"citybots: {error}", file=sys.stderr)
            return 1
    print(f"laboratory {args.name!r} added. Its API key (shown once, stored hashed):\n{key}")
    print("Push results with: POST /api/v1/pcr-results, header 'Authorization: Bearer <key>'")
    return 0


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password (10 to 128 characters, hard to guess): ")
    if getpass.getpass("the same again: ") != first:
        raise ValueError("the two passwords differ")
    return first


async def _create_panel_user(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import command_services
    from services.panel import PanelError, check_new_user

    try:
        password = _read_new_password(args.password_stdin)
        check_new_user(args.username, args.role, password)
    except (PanelError, ValueError) as error:
        print(f"citybots: {error}", file=sys.stderr)
        return 2
    async with command_services(settings) as services:
        try:
            user = await services.panel.create_user(
                args.username, args.role, password, actor=f"cli:{getpass.getuser()}"
            )
        except PanelError as error:
            print(f"citybots: {error}", file=sys.stderr)
            return 1
    print(f"{user.username} ({user.role}) can log in at {settings.admin_url}/login")
    return 0


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import bot_username, command_services
    from services.permits import OFFICER_BOT
    from services.quarantine import QuarantineError

    if args.admin_command == "create-user":
        return await _create_panel_user(settings, args)
    if args.admin_command == "invite-officer":
        async with command_services(settings) as services:
            checkpoint = None
            if args.checkpoint:
                checkpoint = await services.checkpoints.by_name(args.checkpoint)
                if checkpoint is None:
                    print(f"citybots: no checkpoint called {args.checkpoint!r}", file=sys.stderr)
                    return 1
            token = await services.permits.create_officer_invite(
                args.role,
                created_by="cli",
                checkpoint_id=checkpoint.id if checkpoint else None,
            )
        bot = OFFICER_BOT[args.role]
        username = await bot_username(settings, bot)
        print(f"{args.role} officer invite, valid for 7 days, for one account:")
        print(f"https://t.me/{username}?start={token}")
        print(f"(in the sandbox: send '/start {token}' to the {bot} bot)")
        return 0

    async with command_services(settings) as services:
        try:
            token = await services.quarantine.create_doctor_invite(
                args.district, on_duty=args.duty, created_by="cli"
            )
        except QuarantineError as error:
            print(f"citybots: {error.key}: give --district a name", file=sys.stderr)
            return 1
    username = await bot_username(settings, "doctor")
    duty = " (on the duty list)" if args.duty else ""
    print(f"doctor invite for {args.district}{duty}, valid for 7 days, for one account:")
    print(f"https://t.me/{username}?start={token}")
    print(f"(in the sandbox: send '/start {token}' to the doctor bot)")
    return 0


async def _checkpoints(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import bot_username, command_services
    from flows.rendering import qr_png
    from presentation.i18n import text
    from presentation.keys import input_error
    from services.permits import PermitError
    from services.validation import InvalidInput

    async with command_services(settings) as services:
        if args.checkpoints_command == "add":
            try:
                await services.checkpoints.add(
                    args.name,
                    latitude=args.lat,
                    longitude=args.lon,
                    zone_kind=args.zone_kind,
                    zone_name=args.zone,
                    register=args.register,
                    actor=f"cli:{getpass.getuser()}",
                )
            except (PermitError, InvalidInput) as error:
                told = (
                    text("en", error.key)
                    if isinstance(error, PermitError)
                    else input_error("en", error.code)
                )
                print(f"citybots: {told}", file=sys.stderr)
                return 1
        checkpoints = await services.checkpoints.all()
    username = await bot_username(settings, "citizen")
    folder = settings.data_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    for checkpoint in checkpoints:
        link = f"https://t.me/{username}?start={checkpoint.qr_token}"
        poster = folder / f"checkpoint-{checkpoint.id}.png"
        poster.write_bytes(qr_png(link))
        print(
            f"{checkpoint.name}  ({checkpoint.latitude:.5f}, {checkpoint.longitude:.5f})  guards "
            f"{checkpoint.zone_kind} {checkpoint.zone_name!r}, {checkpoint.register} register\n"
            f"    travellers: {link}  (QR: {poster})"
        )
    if not checkpoints:
        print("no checkpoints yet: citybots checkpoints add NAME --lat .. --lon .. --zone ..")
    return 0


async def _disputes(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import command_services
    from services.disputes import DisputeError

    async with command_services(settings) as services:
        if args.disputes_command == "list":
            disputes = await services.disputes.list(None if args.all else "open")
            if not disputes:
                print("no open disputes" if not args.all else "no disputes")
            for d in disputes:
                print(
                    f"#{d.id}  {d.created_at:%Y-%m-%d %H:%M}  {d.state:<8}  IIN {d.iin}  "
                    f"shown {d.status_shown}  ref {d.test_reference or '-'}\n    {d.claim}"
                )
            await services.audit(
                actor=f"cli:{getpass.getuser()}", action="disputes.list", subject=None
            )
            return 0
        end = datetime.fromisoformat(args.isolation_end) if args.isolation_end else None
        if end is not None and end.tzinfo is None:
            end = end.replace(tzinfo=ZoneInfo(settings.city_timezone))
        try:
            dispute = await services.disputes.resolve(
                args.id,
                officer=args.officer,
                upheld=args.decision == "uphold",
                note=args.note,
                isolation_end=end,
                entered_in_error=args.entered_in_error,
            )
        except DisputeError as error:
            print(f"citybots: {error.code}", file=sys.stderr)
            return 1
    print(f"dispute #{dispute.id} {dispute.state}; the citizen will be told in the bot")
    return 0


async def _exposures(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import command_services

    since = datetime.fromisoformat(args.since) if args.since else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=ZoneInfo(settings.city_timezone))
    async with command_services(settings) as services:
        notices = await services.exposure.notices(since=since)
        await services.audit(
            actor=f"cli:{getpass.getuser()}",
            action="exposures.list",
            subject=None,
            details={"since": args.since, "count": len(notices)},
        )
    tz = ZoneInfo(settings.city_timezone)
    for n in notices:
        print(
            f"{n.exposed_iin}  {n.venue_name}  {n.window_start.astimezone(tz):%Y-%m-%d %H:%M}"
            f" - {n.window_end.astimezone(tz):%H:%M}  {'notified' if n.notified else 'pending'}"
        )
    if not notices:
        print("no exposure notices")
    return 0


async def _rollups(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import command_services

    async with command_services(settings) as services:
        report = await services.rollups.refresh(rebuild=args.rollups_command == "rebuild")
    if report is None:
        print("citybots: another roll-up is running; try again in a minute", file=sys.stderr)
        return 1
    print(
        f"roll-ups: {report.hours:,} hours and {report.days:,} days recomputed"
        f"{' (everything rebuilt)' if report.rebuilt else ''} in {report.seconds:.2f} s"
    )
    return 0


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import audit_chain_key, command_services
    from services.audit import head as chain_head
    from services.audit import verify

    head = None
    if args.head:
        seq, _, prefix = args.head.partition(":")
        if not seq.isdigit() or not re.fullmatch(r"[0-9a-fA-F]{8,64}", prefix):
            print("citybots: --head must be SEQ:HASH as the chain job logs it", file=sys.stderr)
            return 2
        head = (int(seq), prefix)
    key = audit_chain_key(settings)
    async with command_services(settings) as services:
        pool = services.panel.pool
        report = await verify(pool, key, head=head)
        seq, digest = await chain_head(pool)
    print(f"audit log: {report.checked:,} rows checked")
    for problem in report.broken:
        print(f"BROKEN: {problem}")
    if report.unchained:
        print(
            f"BROKEN: {report.unchained:,} rows were never chained: written before migration"
            " 0032, which ran without the audit key, they cannot be vouched for"
        )
    print(f"head: {seq}:{digest[:16]} (keep it elsewhere; later: audit verify --head {seq}:...)")
    if report.intact and not report.unchained:
        print("the chain is intact: no row was changed or removed")
        return 0
    return 1


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
        print(f"citybots: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    # aiogram takes seconds to import (pydantic models): only after the settings are good.
    from citybots.platform import StartupError

    handlers = {
        "run": _run,
        "check": _check,
        "migrate": _db_migrate,
        "status": _db_status,
    }
    with_args = {
        "demo-data": _demo_data,
        "import": _import,
        "labs": _labs_add,
        "ambulance": ambulance_command,
        "admin": _admin,
        "disputes": _disputes,
        "exposures": _exposures,
        "model": model_command,
        "feeds": feeds_command,
        "checkpoints": _checkpoints,
        "zones": _zones,
        "rollups": _rollups,
        "audit": _audit,
        "backup": _db_backup,
        "restore": _db_restore,
    }
    command = args.db_command if args.command == "db" else args.command
    if command == "nlu":  # no servers and no event loop needed
        return nlu_command(settings, args)
    try:
        if command in with_args:
            return asyncio.run(with_args[command](settings, args))
        return asyncio.run(handlers[command](settings))
    except (StartupError, MigrationError, EmbeddedServerError) as error:
        print(f"citybots: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if not _is_audit_key_refusal(error):
            raise
        print(f"citybots: {error}; the command stopped there", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
