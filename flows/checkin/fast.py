"""Venue QR scans on a short path, in batches.

At a busy city's doors, scans of entry and exit codes are most of the citizen bot's
traffic, and through aiogram each cost about 5 ms of CPU (routing, middlewares, the FSM
in Redis, six round trips to PostgreSQL, a fully typed reply). The citizen bot's
dispatcher hands every ``/start <venue token>`` message here as the Bot API's JSON.
Scans from linked citizens with nothing in progress are handled together: one Redis
round trip for the FSM and the cached languages (a person not cached yet gets the
middleware's own :func:`presentation.i18n.language_for`), codes and linked IINs from in-process
caches kept true by invalidations (services/localcache.py), statuses from the status
service, and every scan of the batch with the update ledger's claims in one transaction
that calls the same check-in and check-out code as the normal path (services/visits.py).
The replies are the normal path's texts and keyboard (flows/checkin/scan.py).

Anything else goes the normal way, through aiogram, one update at a time: an account
with no IIN linked, a conversation in progress, an unknown, forged or revoked code, and
every scan of a batch that failed (after retrying while the database was briefly
unreachable); so the normal path's messages, rate limits and error notices apply to them
unchanged, and a failed batch leaves nothing written: its claims roll back with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.methods import Response, TelegramMethod
from aiohttp import ClientError

from flows.checkin.scan import checked_in_text, checked_out_text
from flows.common.keyboards import main_menu
from flows.context import BotContext
from flows.filters import start_payload
from presentation.i18n import language_for, language_of
from services.db import is_unavailable, recover
from services.updates import Claim
from services.users import LanguagePreferences
from services.venues import TOKEN_PREFIX, CodeState, Venue
from services.visits import CheckInRequest

log = logging.getLogger(__name__)

MAX_BATCH = 500
BATCHES_AT_ONCE = 3
"""Batches stored at the same time, each in its own transaction: while one waits on
PostgreSQL the next is taken and sent. A person's scans are never in two of them, so
their order holds and the batches' locks (taken per person) never meet."""
RETRY_FOR = 5.0
"""How long a batch is retried while PostgreSQL or Redis is unreachable before its scans
go the normal way (which tells each person the service is unavailable)."""

_PREFIXES = tuple(TOKEN_PREFIX.values())


class Outcome(enum.Enum):
    SLOW = "slow"  # not for the fast path: parse it and feed it through aiogram
    BUSY = "busy"  # another worker holds this update now (a webhook answers 503)


class SendReply(TelegramMethod[dict[str, Any]]):
    """sendMessage with the keyboard already serialised and the sent message left as
    JSON: the same request as ``message.answer``, without building typed models."""

    __returning__ = dict[str, Any]
    __api_method__ = "sendMessage"

    chat_id: int
    text: str
    reply_markup: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply as plain values; a typed :class:`SendReply` only where aiogram sends it."""

    chat_id: int
    text: str
    reply_markup: str

    def method(self) -> SendReply:
        return SendReply(chat_id=self.chat_id, text=self.text, reply_markup=self.reply_markup)


_PINNED_RESPONSE_MODEL = Response[dict[str, Any]]  # as bots/session.py explains
SEND_TIMEOUT = 900.0  # a hung connection ends here; 429 waits (up to 5 x 120 s) fit


def scan_of(raw: dict[str, Any]) -> tuple[int, str] | None:
    """(sender, token) of an update that is a venue code scan in a private chat: the
    ``/start`` payload the check-in flow takes (flows/checkin/handlers.py)."""
    message = raw.get("message")
    if not isinstance(message, dict) or not isinstance(raw.get("update_id"), int):
        return None
    text_, user, chat = message.get("text"), message.get("from"), message.get("chat")
    if not (isinstance(text_, str) and isinstance(user, dict) and isinstance(chat, dict)):
        return None
    user_id = user.get("id")
    if chat.get("type") != "private" or not isinstance(user_id, int) or chat.get("id") != user_id:
        return None
    if "message_thread_id" in message or "business_connection_id" in message:
        return None
    token = start_payload(text_, _PREFIXES)
    return None if token is None else (user_id, token)


_NO_VENUE = Venue(0, "", "", "", "", None, "warn", 0)  # until the token is resolved


@dataclass(eq=False)
class _Scan:
    bot: Bot
    raw: dict[str, Any]
    future: asyncio.Future[Any] | None
    update_id: int
    user_id: int
    token: str
    language_code: str | None
    lang: str = ""
    iin: str = ""
    venue: Venue = _NO_VENUE
    entrance_id: int | None = None
    direction: str | None = None
    reply: Reply | None = None
    claim: Claim | None = None


class ScanFastPath:
    """What the citizen bot's dispatcher calls on raw updates before aiogram parses them.

    ``slow`` hands an update pushed by long polling back to the normal path."""

    def __init__(
        self,
        context: BotContext,
        storage: RedisStorage,
        slow: Callable[[Bot, dict[str, Any]], None],
    ) -> None:
        self.context = context
        self.storage = storage
        self.slow = slow
        self._pending: list[_Scan] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self._storing: set[int] = set()  # people with a scan in a batch being stored
        self._sending: set[asyncio.Task[None]] = set()
        self._menus: dict[str, str] = {}
        self.handled = 0  # scans this path stored and answered (tests and metrics)

    def takes(self, raw: dict[str, Any]) -> bool:
        return scan_of(raw) is not None

    def push(self, bot: Bot, raw: dict[str, Any]) -> None:
        """Long polling: nobody waits; the reply is sent when the batch is stored."""
        self._add(bot, raw, None)

    async def handle(self, bot: Bot, raw: dict[str, Any]) -> Any:
        """A webhook: the reply to send (or None for an update already handled) once the
        batch is stored, :attr:`Outcome.BUSY` or :attr:`Outcome.SLOW`."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._add(bot, raw, future)
        return await future

    def _add(self, bot: Bot, raw: dict[str, Any], future: asyncio.Future[Any] | None) -> None:
        found = scan_of(raw)
        if found is None:
            self._finish_slow_one(bot, raw, future)
            return
        user = raw["message"]["from"]
        code = user.get("language_code")
        self._pending.append(
            _Scan(
                bot,
                raw,
                future,
                raw["update_id"],
                found[0],
                found[1],
                code if isinstance(code, str) else None,
            )
        )
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="checkin-fast-path")

    async def close(self) -> None:
        tasks = [t for t in (self._worker, *self._batches) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._worker = None
        for scan in self._pending:
            if scan.future is not None and not scan.future.done():
                scan.future.cancel()
        self._pending.clear()
        for task in list(self._sending):
            task.cancel()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0)  # let the rest of this poll's updates join the batch
            while self._pending and len(self._batches) < BATCHES_AT_ONCE:
                batch = self._take_batch()
                if not batch:
                    break
                task = asyncio.create_task(self._store_batch(batch))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)

    def _take_batch(self) -> list[_Scan]:
        """Up to MAX_BATCH pending scans, in arrival order; a person with a scan in a
        batch being stored keeps this and every later scan waiting, in order."""
        batch: list[_Scan] = []
        waiting: list[_Scan] = []
        held = set(self._storing)
        for scan in self._pending:
            if scan.user_id in held or len(batch) >= MAX_BATCH:
                held.add(scan.user_id)
                waiting.append(scan)
            else:
                batch.append(scan)
        self._pending = waiting
        self._storing.update(scan.user_id for scan in batch)
        return batch

    async def _store_batch(self, batch: list[_Scan]) -> None:
        try:
            await self._process(batch)
        except Exception:  # a bug: whoever waits must not wait for ever
            log.exception("check-ins: a batch of %d was not finished", len(batch))
            for scan in batch:
                self._finish(scan, Outcome.SLOW)
        finally:
            self._storing.difference_update(scan.user_id for scan in batch)
            self._wakeup.set()

    async def _process(self, batch: list[_Scan]) -> None:
        deadline = time.monotonic() + RETRY_FOR
        delay = 0.2
        while True:
            try:
                fast = await self._store(batch)
                break
            except Exception as error:
                retryable = _retryable(error)
                if retryable and time.monotonic() < deadline:
                    log.warning(
                        "check-ins: a batch of %d waits for storage (%s)",
                        len(batch),
                        type(error).__name__,
                    )
                    if is_unavailable(error):
                        with contextlib.suppress(Exception):
                            await recover(self.context["ledger"].pool, error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                if retryable:
                    log.warning("check-ins: a batch of %d goes the normal way", len(batch))
                else:
                    log.exception(
                        "check-ins: a batch of %d failed; each scan goes the normal way",
                        len(batch),
                    )
                for scan in batch:
                    scan.claim = None
                fast = []
                break
        handled = 0
        taken = {id(scan) for scan in fast}
        for scan in batch:
            if id(scan) not in taken:
                self._finish_slow(scan)
            elif scan.claim is Claim.OWNED:
                handled += 1
                self._finish(scan, scan.reply.method() if scan.reply else None)
            elif scan.claim is Claim.IN_FLIGHT:
                self._finish(scan, Outcome.BUSY)
            else:
                self._finish(scan, None)
        metrics, bot_name = self.context["metrics"], self.context["profile"].name
        if handled:
            self.handled += handled
            metrics.updates.labels(bot_name, "handled").inc(handled)
        if len(fast) > handled:
            metrics.updates.labels(bot_name, "duplicate").inc(len(fast) - handled)
        self._send([s for s in fast if s.future is None and s.reply is not None])

    async def _store(self, batch: list[_Scan]) -> list[_Scan]:
        """Decide which scans are the fast path's, and store them in one transaction;
        those it takes, with their claims and replies."""
        context = self.context
        default = context["default_language"]
        keys: list[str] = []
        for scan in batch:
            fsm = StorageKey(bot_id=scan.bot.id, chat_id=scan.user_id, user_id=scan.user_id)
            keys += [
                self.storage.key_builder.build(fsm, "state"),
                self.storage.key_builder.build(fsm, "data"),
                LanguagePreferences.cache_key(scan.user_id),
            ]
        values = await self.storage.redis.mget(keys)
        candidates: list[_Scan] = []
        unknown: list[_Scan] = []
        for index, scan in enumerate(batch):
            state, data, language = values[3 * index : 3 * index + 3]
            if state is not None or data is not None:
                continue  # a conversation in progress: the normal way
            candidates.append(scan)
            if language is not None:
                choice = LanguagePreferences.from_cache(language)
                lang, to_note = language_of(choice, scan.language_code, default)
                if to_note is None:
                    scan.lang = lang
                    continue
            unknown.append(scan)  # not cached, or the app's language changed
        if unknown:
            languages = context["languages"]
            found = await asyncio.gather(
                *(language_for(languages, s.user_id, s.language_code, default) for s in unknown)
            )
            for scan, lang in zip(unknown, found, strict=True):
                scan.lang = lang
        if not candidates:
            return []
        targets = await context["venues"].resolve_many({s.token for s in candidates})
        linked = await context["citizens"].linked_iins({s.user_id for s in candidates})
        fast: list[_Scan] = []
        for scan in candidates:
            target = targets[scan.token]
            iin = linked.get(scan.user_id)
            if target.state is CodeState.VALID and target.venue is not None and iin:
                scan.iin, scan.venue = iin, target.venue
                scan.entrance_id, scan.direction = target.entrance_id, target.direction
                fast.append(scan)
        if not fast:
            return []
        # One visit per update: a redelivery inside the batch is a duplicate of the first.
        firsts: dict[int, _Scan] = {}
        for scan in fast:
            firsts.setdefault(scan.update_id, scan)
        # Each person at most once per round, rounds in arrival order, people in IIN order
        # within a round (the same lock order in every worker: no deadlocks between them).
        rounds: list[list[_Scan]] = []
        seen: dict[str, int] = {}
        for scan in firsts.values():
            depth = seen.get(scan.iin, 0)
            seen[scan.iin] = depth + 1
            if depth == len(rounds):
                rounds.append([])
            rounds[depth].append(scan)
        ledger, visits = context["ledger"], context["visits"]
        bot_id = batch[0].bot.id
        async with ledger.pool.acquire() as conn, conn.transaction():
            claims = await ledger.claim_done_many(conn, bot_id, list(firsts))
            for one_round in rounds:
                owned = sorted(
                    (s for s in one_round if claims.get(s.update_id) is Claim.OWNED),
                    key=lambda s: s.iin,
                )
                entries = [s for s in owned if s.direction == "entry"]
                exits = [s for s in owned if s.direction != "entry"]
                results = await visits.check_in_many(
                    [
                        CheckInRequest(s.iin, s.venue, s.entrance_id, "qr", tg_user_id=s.user_id)
                        for s in entries
                    ],
                    conn,
                )
                left = await visits.check_out_many([(s.iin, s.venue.id) for s in exits], conn)
                for scan, result in zip(entries, results, strict=True):
                    scan.reply = self._reply(scan, checked_in_text(scan.lang, scan.venue, result))
                for scan, name in zip(exits, left, strict=True):
                    scan.reply = self._reply(scan, checked_out_text(scan.lang, scan.venue, name))
        for scan in fast:
            first = firsts[scan.update_id]
            claim = claims.get(scan.update_id, Claim.IN_FLIGHT)
            scan.claim = claim if first is scan else Claim.DONE
            if scan.claim is not Claim.OWNED:
                scan.reply = None
        return fast

    def _reply(self, scan: _Scan, text_: str) -> Reply:
        menu = self._menus.get(scan.lang)
        if menu is None:
            keyboard = main_menu(scan.lang, self.context["profile"].menu)
            menu = str(scan.bot.session.prepare_value(keyboard, bot=scan.bot, files={}))
            self._menus[scan.lang] = menu
        return Reply(scan.user_id, text_, menu)

    def _finish(self, scan: _Scan, result: Any) -> None:
        if scan.future is not None and not scan.future.done():
            scan.future.set_result(result)

    def _finish_slow(self, scan: _Scan) -> None:
        self._finish_slow_one(scan.bot, scan.raw, scan.future)

    def _finish_slow_one(
        self, bot: Bot, raw: dict[str, Any], future: asyncio.Future[Any] | None
    ) -> None:
        if future is None:
            self.slow(bot, raw)
        elif not future.done():
            future.set_result(Outcome.SLOW)

    def _send(self, scans: list[_Scan]) -> None:
        """Long polling: send the replies, each person's in the order of their scans."""
        if not scans:
            return
        by_chat: dict[int, list[_Scan]] = {}
        for scan in scans:
            by_chat.setdefault(scan.user_id, []).append(scan)
        task = asyncio.create_task(self._send_all(list(by_chat.values())))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_all(self, chats: list[list[_Scan]]) -> None:
        """One deadline for the whole batch rather than a timer per request (a tenth of
        the worker's CPU went to aiohttp's per-request timers)."""
        tasks = [asyncio.create_task(self._send_chat(chat)) for chat in chats]
        try:
            _, late = await asyncio.wait(tasks, timeout=SEND_TIMEOUT)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        for task in late:
            task.cancel()
        if late:
            log.warning("check-ins: %d replies not sent in %.0f s", len(late), SEND_TIMEOUT)

    async def _send_chat(self, scans: list[_Scan]) -> None:
        for scan in scans:
            if scan.reply is None:
                continue
            try:
                # Through aiogram's client like every other message: the shared pacer
                # gives it its turn, a 429 is waited out.
                await scan.bot(scan.reply.method())
            except (TelegramAPIError, ClientError, TimeoutError, OSError) as error:
                log.warning("check-in reply not sent: %s", type(error).__name__)
            except Exception:
                log.exception("check-in reply not sent")


def _retryable(error: BaseException) -> bool:
    """Storage down, or a transaction that lost a race: the same batch will go through
    when tried again."""
    return is_unavailable(error) or isinstance(
        error, asyncpg.DeadlockDetectedError | asyncpg.SerializationError
    )
