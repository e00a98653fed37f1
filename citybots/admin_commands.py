"""`citybots admin | disputes | exposures | audit`: panel users and invites, the registry
officers' and epidemiologists' lists, and the audit chain's check."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from zoneinfo import ZoneInfo

from citybots.commands import city_time, command_error, print_each
from citybots.settings import Settings


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password (10 to 128 characters, hard to guess): ")
    if getpass.getpass("the same again: ") != first:
        raise ValueError("the two passwords differ")
    return first


async def _create_panel_user(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import command_services
    from services.panel import PanelError, check_new_user

    try:
        password = _read_new_password(args.password_stdin)
        check_new_user(args.username, args.role, password)
    except (PanelError, ValueError) as error:
        return command_error(str(error), 2)
    async with command_services(settings) as services:
        try:
            user = await services.panel.create_user(
                args.username, args.role, password, actor=f"cli:{getpass.getuser()}"
            )
        except PanelError as error:
            return command_error(str(error))
    print(f"{user.username} ({user.role}) can log in at {settings.admin_url}/login")
    return 0


async def admin(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import bot_username, command_services
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
                    return command_error(f"no checkpoint called {args.checkpoint!r}")
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
            return command_error(f"{error.key}: give --district a name")
    username = await bot_username(settings, "doctor")
    duty = " (on the duty list)" if args.duty else ""
    print(f"doctor invite for {args.district}{duty}, valid for 7 days, for one account:")
    print(f"https://t.me/{username}?start={token}")
    print(f"(in the sandbox: send '/start {token}' to the doctor bot)")
    return 0


async def disputes(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import command_services
    from services.disputes import DisputeError

    async with command_services(settings) as services:
        if args.disputes_command == "list":
            disputes = await services.disputes.list(None if args.all else "open")
            print_each(
                (
                    f"#{d.id}  {d.created_at:%Y-%m-%d %H:%M}  {d.state:<8}  IIN {d.iin}  "
                    f"shown {d.status_shown}  ref {d.test_reference or '-'}\n    {d.claim}"
                    for d in disputes
                ),
                "no open disputes" if not args.all else "no disputes",
            )
            await services.audit(
                actor=f"cli:{getpass.getuser()}", action="disputes.list", subject=None
            )
            return 0
        end = city_time(args.isolation_end, settings) if args.isolation_end else None
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
            return command_error(f"{error.code}")
    print(f"dispute #{dispute.id} {dispute.state}; the citizen will be told in the bot")
    return 0


async def exposures(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import command_services

    since = city_time(args.since, settings) if args.since else None
    async with command_services(settings) as services:
        notices = await services.exposure.notices(since=since)
        await services.audit(
            actor=f"cli:{getpass.getuser()}",
            action="exposures.list",
            subject=None,
            details={"since": args.since, "count": len(notices)},
        )
    tz = ZoneInfo(settings.city_timezone)
    print_each(
        (
            f"{n.exposed_iin}  {n.venue_name}  {n.window_start.astimezone(tz):%Y-%m-%d %H:%M}"
            f" - {n.window_end.astimezone(tz):%H:%M}  {'notified' if n.notified else 'pending'}"
            for n in notices
        ),
        "no exposure notices",
    )
    return 0


async def audit(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import audit_chain_key, command_services
    from services.audit import head as chain_head
    from services.audit import verify

    head = None
    if args.head:
        seq, _, prefix = args.head.partition(":")
        if not seq.isdigit() or not re.fullmatch(r"[0-9a-fA-F]{8,64}", prefix):
            return command_error("--head must be SEQ:HASH as the chain job logs it", 2)
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
