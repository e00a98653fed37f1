"""Publishing city news to two million subscribers (issue 22 §4): the publishing request
(it counts the subscribers and queues the channel's post), then the background job's
queueing of a message per subscriber in batches, timed to the end without the limit
that keeps a general item only minutes ahead of the notifier; and the News page's
progress query over the two million outbox rows.

    .venv/bin/python bench/news.py [--subscribers 2000000] [--batch 5000]

Uses DATABASE_URL when set (a fresh database `citybots_bench`), otherwise an embedded
PostgreSQL (fsync off) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from common import BENCH_AUDIT_KEY, CpuMeter, servers  # bench/ is the script's folder

from services.db import create_pool
from services.news import NewsService

TEXTS = {"ru": "Новость", "kk": "Жаңалық", "en": "News"}


async def main(args: argparse.Namespace) -> None:
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    async with servers() as (pg_url, _):
        pool = await create_pool(pg_url, size=4, audit_key=BENCH_AUDIT_KEY)
        await pool.execute(
            "INSERT INTO news_subscribers (chat_id) SELECT 10000000 + n * 7"
            " FROM generate_series(1, $1) AS n",
            args.subscribers,
        )
        await pool.execute("VACUUM ANALYZE news_subscribers")
        news = NewsService(pool, channel=-100123, per_second=30)
        item = await news.write(TEXTS, actor="bench", urgent=False)
        started = time.perf_counter()
        audience = await news.publish(item, actor="bench", to_channel=True, to_subscribers=True)
        print(
            f"publishing request: {audience:,} subscribers counted, the channel's post queued,"
            f" in {(time.perf_counter() - started) * 1000:.0f} ms; the send takes"
            f" {news.estimate(audience).words()} at 30 a second",
            flush=True,
        )
        meter = CpuMeter([])
        meter.start()
        started = time.perf_counter()
        batches = 0
        while await news.queue_batch(batch=args.batch) is not None:
            batches += 1
        seconds = time.perf_counter() - started
        meter.stop()
        queued = (await news.get(item)).recipients
        assert queued == audience, (queued, audience)
        print(
            f"queueing: {queued:,} messages in {batches} batches of {args.batch:,} in"
            f" {seconds:.1f} s: {queued / seconds:,.0f} a second, the longest transaction one"
            f" batch ({meter.report(max(queued // 1000, 1), '1,000 subscribers')})",
            flush=True,
        )
        started = time.perf_counter()
        progress = await news.progress(item)
        print(
            f"the News page's progress query: {progress.queued:,} queued, {progress.waiting:,}"
            f" waiting, {progress.time_left.words()} left, in"
            f" {(time.perf_counter() - started) * 1000:.0f} ms",
            flush=True,
        )
        await pool.close()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
