"""A canary IIN, phone number and coordinate sent to every bot never reach a log line."""

import io
import logging

from bots.sandbox.client import SandboxClient
from citybots.logs import ScrubbingFormatter
from citybots.settings import BOT_NAMES

CANARY_IIN = "791028302728"
CANARY_PHONE = "+77019998877"
CANARY_LAT, CANARY_LON = 43.2567891, 76.9123457


async def test_canaries_appear_in_no_log_line(sandbox: SandboxClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ScrubbingFormatter("%(name)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        for bot in BOT_NAMES:
            chat = await sandbox.chat(bot, first_name="Canary")
            await chat.send(f"/start {CANARY_IIN}")
            await chat.send(f"my iin is {CANARY_IIN}, phone {CANARY_PHONE}")
            await chat.send_contact(CANARY_PHONE)
            message_id = await chat.send_location(CANARY_LAT, CANARY_LON, live_period=900)
            await chat.move_location(message_id, CANARY_LAT + 0.0001, CANARY_LON)
            await chat.replies(4, wait=15)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    logged = stream.getvalue()
    assert "Update id=" in logged  # the capture did see the bots' logging
    for canary in (CANARY_IIN, CANARY_PHONE, CANARY_PHONE[1:], "43.25678", "76.91234"):
        assert canary not in logged
