"""``citybots feeds``: the systems that push the situation centre's feeds over the API.
(A feed's CSV file is imported with ``citybots import <feed> FILE``.)"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from citybots.commands import add_api_client
from citybots.settings import Settings
from services.feeds.specs import FEEDS

if TYPE_CHECKING:
    from services.container import Services


def add_parser(commands: Any) -> None:
    feeds = commands.add_parser("feeds", help="sources that push the situation centre's feeds")
    feeds_commands = feeds.add_subparsers(dest="feeds_command", required=True)
    adding = feeds_commands.add_parser(
        "add-source", help="add a source allowed to push some feeds and print its API key"
    )
    adding.add_argument("name")
    adding.add_argument("feeds", nargs="+", choices=list(FEEDS), metavar="FEED")


async def feeds_command(settings: Settings, args: argparse.Namespace) -> int:
    from services.feeds.store import FeedSourceError

    def add(services: Services) -> Awaitable[str]:
        return services.feeds.sources.add(args.name, args.feeds)

    return await add_api_client(settings, "source", args.name, add, FeedSourceError)
