"""`citybots import | zones | labs | checkpoints | rollups`: the registers, the zones and
the places the platform knows, and the situation centre's counts."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from citybots.commands import (
    add_api_client,
    city_time,
    cli_actor,
    command_error,
    print_each,
    stop_on_sigterm,
)
from citybots.settings import Settings

if TYPE_CHECKING:
    from services.checkpoints import Checkpoint
    from services.zones import ZoneSummary


async def import_zones(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from citybots.infrastructure import command_services
    from geofence.zones import ZoneError, parse_zones
    from services.zones import ZoneImportError

    try:
        valid_from = city_time(args.valid_from, settings) if args.valid_from else datetime.now(UTC)
    except ValueError:
        return command_error(f"--valid-from: not a time: {args.valid_from!r}", 2)
    try:
        shapes = parse_zones(await asyncio.to_thread(path.read_bytes), kind=args.zone_kind)
    except ZoneError as error:
        return command_error(f"{path.name}: {error}; nothing imported")
    async with command_services(settings) as services:
        try:
            result = await services.zones.import_shapes(
                shapes,
                valid_from=valid_from,
                actor=cli_actor(args.actor),
                source=f"file:{path.name}",
            )
        except ZoneImportError as error:
            return command_error(f"{error}; nothing imported")
    print(
        f"{len(shapes)} zones: {result.added} new, {result.replaced} new versions, "
        f"{result.unchanged} unchanged; in force from {valid_from:%Y-%m-%d %H:%M %Z}"
    )
    return 0


async def import_file(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import command_services
    from citybots.progress import ProgressLine
    from services.feeds.specs import FEEDS
    from services.registry_rows import CsvSource

    path = Path(args.file)
    if not await asyncio.to_thread(path.is_file):
        return command_error(f"no such file: {path}", 2)
    if args.kind == "zones":
        return await import_zones(settings, args, path)
    source = CsvSource(path)
    progress = ProgressLine(f"importing {path.name}", source.fraction_read)
    rows: Iterable[tuple[int, list[str] | None]] = source
    if args.kind == "pois" and path.suffix.lower() in (".geojson", ".json"):
        from geofence.points import point_rows

        rows = iter(point_rows(await asyncio.to_thread(path.read_bytes)))
    size = (await asyncio.to_thread(path.stat)).st_size
    stop_on_sigterm()  # a stopped import still writes its end to the audit log
    async with command_services(settings) as services:
        importer = services.feeds.importer if args.kind in FEEDS else services.importer
        report = await importer.import_rows(
            args.kind,
            rows,
            source=f"file:{path.name}",
            actor=cli_actor(args.actor),
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


def _zone_line(zone: ZoneSummary) -> str:
    points = ", ".join(f"{kind} {count}" for kind, count in sorted(zone.points.items()))
    return f"{zone.name} (v{zone.version}): {points or 'no points'}; {zone.residents:,} residents"


async def zones(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import command_services
    from services.validation import InvalidInput, parse_coordinates

    try:
        at = city_time(args.at, settings) if args.at else datetime.now(UTC)
    except ValueError:
        return command_error(f"--at: not a time: {args.at!r}", 2)
    async with command_services(settings) as services:
        if args.zones_command == "at":
            try:
                point = parse_coordinates(args.lat, args.lon)
            except InvalidInput as error:
                return command_error(f"not a place: {error.code}", 2)
            hits = await services.zones.zones_at(point.longitude, point.latitude, at)
            lines = (f"{hit.kind:<10} {hit.name}  (version {hit.version})" for hit in hits)
            print_each(lines, "in no zone")
            return 0
        if args.zones_command == "lift":
            lifted = await services.zones.lift(args.kind, args.name, at=at, actor="cli")
            if not lifted:
                return command_error(f"no {args.kind} zone {args.name!r} in force then")
            print(f"{args.kind} zone {args.name!r} lifted from {at:%Y-%m-%d %H:%M %Z}")
            return 0
        summaries = await services.zones.points_per_zone(args.kind, at)
    print_each(map(_zone_line, summaries), f"no {args.kind} zones in force")
    return 0


async def labs_add(settings: Settings, args: argparse.Namespace) -> int:
    from services.labs import LabError

    return await add_api_client(
        settings, "laboratory", args.name, lambda s: s.labs.add(args.name), LabError
    )


async def checkpoints(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import bot_username, command_services
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
                return command_error(told)
        checkpoints = await services.checkpoints.all()
    username = await bot_username(settings, "citizen")
    folder = settings.data_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    print_each(
        (_with_poster(checkpoint, username, folder) for checkpoint in checkpoints),
        "no checkpoints yet: citybots checkpoints add NAME --lat .. --lon .. --zone ..",
    )
    return 0


def _with_poster(checkpoint: Checkpoint, username: str, folder: Path) -> str:
    """A checkpoint's lines, once its QR poster for travellers is written in ``folder``."""
    from presentation.rendering import qr_png

    link = f"https://t.me/{username}?start={checkpoint.qr_token}"
    poster = folder / f"checkpoint-{checkpoint.id}.png"
    poster.write_bytes(qr_png(link))
    return (
        f"{checkpoint.name}  ({checkpoint.latitude:.5f}, {checkpoint.longitude:.5f})  guards "
        f"{checkpoint.zone_kind} {checkpoint.zone_name!r}, {checkpoint.register} register\n"
        f"    travellers: {link}  (QR: {poster})"
    )


async def rollups(settings: Settings, args: argparse.Namespace) -> int:
    from citybots.infrastructure import command_services

    async with command_services(settings) as services:
        report = await services.rollups.refresh(rebuild=args.rollups_command == "rebuild")
    if report is None:
        return command_error("another roll-up is running; try again in a minute")
    print(
        f"roll-ups: {report.hours:,} hours and {report.days:,} days recomputed"
        f"{' (everything rebuilt)' if report.rebuilt else ''} in {report.seconds:.2f} s"
    )
    return 0
