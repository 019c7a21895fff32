"""`memberbot admin import members FILE.csv` and `memberbot admin export members|ledger --csv`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.admin import transfer
from bot.cli.progress import Bar
from bot.cli.runtime import Failed
from bot.core.context import Services


def add(areas: Any) -> None:
    importing = areas.add_parser(
        "import",
        help="bring a shop's existing members in from CSV",
        description="Bring members in from a CSV file whose header names channel, external_id "
        "and optionally points (the opening balance, credited once per member through the "
        "ledger), name, birthday (MM-DD) and locale. Running the same file again changes "
        "nothing; rows that cannot be used are listed with their line and reason.",
    )
    what = importing.add_subparsers(dest="action_name", required=True, metavar="WHAT")
    members_cmd = what.add_parser("members", help="members and their opening balances")
    members_cmd.add_argument("file", type=Path, metavar="FILE.csv")
    members_cmd.set_defaults(action=import_members)

    exporting = areas.add_parser(
        "export",
        help="members or the ledger as CSV on standard output",
        description="Write members (one row per app account) or every ledger entry as CSV.",
    )
    exporting.add_argument("what", choices=("members", "ledger"))
    exporting.add_argument("--csv", action="store_true", help="CSV (the only format; default)")
    exporting.set_defaults(action=export)


async def import_members(services: Services, args: argparse.Namespace) -> list[str]:
    try:
        stream = args.file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise Failed(f"cannot read {args.file}: {exc.strerror or exc}", 1) from None
    bar = Bar("importing")
    try:
        with stream:
            report = await transfer.import_members(services, stream, bar)
    except UnicodeDecodeError:
        raise Failed(f"{args.file} is not UTF-8 text", 1) from None
    finally:
        bar.close()
    lines = [
        f"imported {report.imported}, already imported {report.already}, "
        f"refused {len(report.refused)}"
    ]
    lines += [f"line {line}: {why}" for line, why in report.refused]
    return lines


async def export(services: Services, args: argparse.Namespace) -> list[str]:
    if args.what == "members":
        await transfer.export_members(services, sys.stdout)
    else:
        await transfer.export_ledger(services, sys.stdout)
    return []
