"""`citybots demo-data`: the demo city to try every bot and page, and what it prints."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from citybots.settings import Settings
from services.demo import (
    DEMO_BIN,
    DEMO_HEAD_PHONE,
    DEMO_PEOPLE,
    DEMO_VENUE_KEYS,
    demo_token,
    load_demo_data,
)


async def demo_data(settings: Settings, args: argparse.Namespace) -> int:
    import secrets

    from citybots.infrastructure import bot_username, command_services
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
