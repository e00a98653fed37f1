"""``citybots feeds``: the systems that push the situation centre's feeds over the API.
(A feed's CSV file is imported with ``citybots import <feed> FILE``.)"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from citybots.settings import Settings
from services.feeds.specs import FEEDS


def add_parser(commands: Any) -> None:
    feeds = commands.add_parser("feeds", help="sources that push the situation centre's feeds")
    feeds_commands = feeds.add_subparsers(dest="feeds_command", required=True)
    adding = feeds_commands.add_parser(
        "add-source", help="add a source allowed to push some feeds and print its API key"
    )
    adding.add_argument("name")
    adding.add_argument("feeds", nargs="+", choices=list(FEEDS), metavar="FEED")


async def feeds_command(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.platform import command_services
    from services.feeds.store import FeedSourceError

    async with command_services(settings) as services:
        try:
            key = await services.feeds.sources.add(args.name, args.feeds)
        except FeedSourceError as error:
            print(f"citybots: {error}", file=sys.stderr)
            return 1
    print(f"source {args.name!r} added. Its API key (shown once, stored hashed):\n{key}")
    print("Push rows with: POST /api/v1/feeds/<feed>, header 'Authorization: Bearer <key>'")
    return 0
