"""`citybots ambulance add-system NAME | clusters`: the ambulance dispatch systems that
push calls over the API, and the cluster computation run at once (the platform runs it
every 30 seconds)."""

from __future__ import annotations

import argparse
from typing import Any

from citybots.commands import add_api_client
from citybots.settings import Settings


def add_parser(commands: Any) -> None:
    ambulance = commands.add_parser("ambulance", help="ambulance 103 calls: dispatch systems")
    sub = ambulance.add_subparsers(dest="ambulance_command", required=True)
    add = sub.add_parser("add-system", help="add a dispatch system and print its API key")
    add.add_argument("name")
    sub.add_parser("clusters", help="cluster the calls not clustered yet, now")


async def ambulance_command(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import command_services

    if args.ambulance_command == "add-system":
        return await _add_system(settings, args.name)
    async with command_services(settings) as services:
        run = await services.ambulance.update_clusters()
    print(
        f"{run.fresh:,} calls clustered: {len(run.new)} new clusters, "
        f"{run.merged} merged ({run.seconds:.2f} s)"
    )
    return 0


async def _add_system(settings: Settings, name: str) -> int:
    from services.ambulance import AmbulanceError

    return await add_api_client(
        settings, "dispatch system", name, lambda s: s.ambulance.add_system(name), AmbulanceError
    )
