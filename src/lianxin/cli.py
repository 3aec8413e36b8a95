"""The `lianxin` command.

Each subcommand lives in its own module under lianxin.commands (or beside the stage it drives)
with `add_arguments(parser)` and `run(args) -> int`; this file only lists them. Modules are
imported when their subcommand runs, so `lianxin replay` never loads Django.

Exit codes: 0 ok, 1 failure (one line on stderr), 2 usage error.
"""

import argparse
import importlib
import os
import sys

from lianxin import __version__
from lianxin.errors import LianxinError

# (name, module, one-line description). Keep in the order a new user meets them.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "lianxin.commands.demo", "seed a demo town and start the duty room on this machine"),
    ("init", "lianxin.commands.init", "create or upgrade the database (alias: migrate)"),
    ("serve", "lianxin.commands.serve", "serve the web app (duty room, admin, push API)"),
    ("monitor", "lianxin.commands.monitor", "run the loop readings -> engine -> alerts"),
    ("notify-worker", "lianxin.commands.notify_worker", "send notifications and escalate alerts"),
    ("import", "lianxin.commands.import_", "import meter data files (CSV, XLSX, Parquet)"),
    ("watch", "lianxin.commands.watch", "import files dropped into a folder, as they arrive"),
    ("export-readings", "lianxin.commands.export_readings", "write stored readings to CSV/Parquet"),
    ("store", "lianxin.commands.store", "check the readings store for damaged files; repair"),
    ("ingest", "lianxin.commands.ingest", "take streamed meter data (MQTT); API tokens"),
    ("replay", "lianxin.commands.replay", "run recorded meter data through the engine, causally"),
    ("spark", "lianxin.commands.spark", "replay recorded readings as Apache Spark tasks, by area"),
    (
        "import-findings",
        "lianxin.commands.import_findings",
        "turn a findings Parquet folder (lianxin spark replay) into alerts",
    ),
    ("eval", "lianxin.commands.eval", "score the engine on real data with injected incidents"),
    ("status", "lianxin.commands.status", "Lianxin's own health: processes, sources, alerts"),
    ("watchdog", "lianxin.commands.watchdog", "check Lianxin's own health (for cron or systemd)"),
    ("manage", "lianxin.commands.manage", "run a Django management command (createsuperuser, ...)"),
]
ALIASES = {"migrate": "init"}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    parser = argparse.ArgumentParser(
        prog="lianxin",
        description="Lianxin (连心): watch over elderly people who live alone through their "
        "meter data, and act on it.",
    )
    parser.add_argument("--version", action="version", version=f"lianxin {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="on failure, print the full traceback"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    modules = {}
    for name, module, description in COMMANDS:
        aliases = [a for a, target in ALIASES.items() if target == name]
        p = sub.add_parser(name, help=description, description=description, aliases=aliases)
        modules[name] = module
        for alias in aliases:
            modules[alias] = module
        p.set_defaults(_module=module)
        # Arguments are declared by the module itself; importing it here is cheap because
        # command modules import their heavy dependencies inside run().
        importlib.import_module(module).add_arguments(p)
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, _modules = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lianxin.web.settings")
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        print(f"lianxin {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the contract is one line, not a traceback
        if args.traceback:
            raise
        print(f"lianxin {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, LianxinError):
        text = f"{type(exc).__name__}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
