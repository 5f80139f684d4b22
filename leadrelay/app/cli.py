"""The ``leadrelay`` command: run the pipeline or one service, migrate, check a definitions file,
replay history through a draft of it."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from leadrelay.app.registry import SERVICES
from leadrelay.credentials import DEV_SECRETS_FILE, SECRET_SETTINGS, bearer_header_word
from leadrelay.settings import Settings, describe_refusal, load_settings

if TYPE_CHECKING:
    from leadrelay.app.definitions import Definitions

log = logging.getLogger("leadrelay")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and dispatch; the exit code is returned, never raised."""
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args) or 0)
    except BrokenPipeError:
        # `leadrelay replay ... | head`: the reader left, which is not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadrelay", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run the whole pipeline in one process")
    up.set_defaults(command=_up)

    run = commands.add_parser("run", help="run one service (what a container runs)")
    run.add_argument("service", choices=SERVICES)
    run.set_defaults(command=_run)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument(
        "--revision", default=None, help="target revision (default: newest; with --downgrade: base)"
    )
    migrate.add_argument("--downgrade", action="store_true", help="go down to --revision")
    migrate.set_defaults(command=_migrate)

    check = commands.add_parser("check-config", help="validate a definitions file")
    check.add_argument("file", type=Path, nargs="?")
    check.add_argument(
        "--print-default",
        action="store_true",
        help="print the shipped default definitions (a starting point to edit)",
    )
    check.set_defaults(command=_check_config)

    simulate = commands.add_parser("simulate", help="send realistic traffic to a running instance")
    simulate.add_argument("--url", default="http://127.0.0.1:8000")
    simulate.add_argument("--visitors", type=int, default=200)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the pipeline to settle"
    )
    simulate.set_defaults(command=_simulate)

    replay = commands.add_parser(
        "replay", help="re-run archived history through a draft definitions file (a sandbox)"
    )
    replay.add_argument("--definitions", type=Path, required=True, help="the draft to evaluate")
    replay.add_argument("--since", default=None, help="only history this recent, e.g. 90d")
    replay.add_argument("--lead", default=None, help="show this lead key's stages in both runs")
    replay.add_argument("--format", choices=("text", "json"), default="text")
    replay.set_defaults(command=_replay)

    calibrate = commands.add_parser(
        "calibrate", help="weigh the scorecard against sales outcomes; write a draft file"
    )
    calibrate.add_argument("--since", default="180d", help="history this recent (default 180d)")
    calibrate.add_argument(
        "--output", type=Path, default=Path("calibrated-definitions.yaml"), help="the draft"
    )
    calibrate.add_argument(
        "--sql-value",
        type=float,
        default=3.0,
        help="how many unproductive hand-offs one SQL is worth (the threshold's objective)",
    )
    calibrate.add_argument("--format", choices=("text", "json"), default="text")
    calibrate.set_defaults(command=_calibrate)
    return parser


def _settings() -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return load_settings(DEV_SECRETS_FILE)
    except (ValidationError, SettingsError) as error:
        sys.exit(f"leadrelay: invalid settings:\n{describe_refusal(error)}")


def _migrate(args: argparse.Namespace) -> int:
    from leadrelay.app import schema

    settings = _settings()
    if args.downgrade:
        schema.downgrade(settings.database_url, args.revision or "base")
    else:
        schema.upgrade(settings.database_url, args.revision or "heads")
    print(f"database migrated to {args.revision or ('base' if args.downgrade else 'newest')}")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from leadrelay.app.definitions import (
        DefinitionsError,
        default_definitions_text,
        load_definitions,
    )

    if args.print_default:
        print(default_definitions_text())
        return 0
    if args.file is None:
        print("leadrelay check-config: give a FILE (or --print-default)", file=sys.stderr)
        return 2
    try:
        definitions = load_definitions(args.file)
    except DefinitionsError as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok ({definitions.summary()})")
    return 0


def _since(value: str | None) -> datetime | None:
    """``--since 90d`` as an instant (None: all of the archive); a bad duration exits 2."""
    from leadrelay.durations import parse_elapsed
    from leadrelay.store.unit_of_work import utc_now

    if value is None:
        return None
    try:
        return utc_now() - parse_elapsed(value)
    except ValueError as error:
        sys.exit(f"leadrelay: --since: {error}")


def _definitions_or_exit(path: Path | None) -> Definitions:
    from leadrelay.app.definitions import DefinitionsError, load_definitions

    try:
        return load_definitions(path)
    except DefinitionsError as error:
        sys.exit(f"{path or 'default definitions'}: {error}")


def _replay(args: argparse.Namespace) -> int:
    from leadrelay.app.replay import evaluate
    from leadrelay.app.replay_report import render_text

    settings = _settings()
    draft = _definitions_or_exit(args.definitions)
    live = _definitions_or_exit(settings.definitions)
    since = _since(args.since)
    # the sandbox's services log as in production ("no eligible rep for lead ..."): the report
    # has their figures, and their lines would read as production's
    logging.getLogger("services").setLevel(logging.ERROR)
    report = asyncio.run(
        evaluate(
            settings.database_url, live, draft, since=since, lead=args.lead,
            topic_prefix=settings.topic_prefix,
        )
    )  # fmt: skip
    print(json.dumps(report, indent=2) if args.format == "json" else render_text(report))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from leadrelay.app import calibrate
    from leadrelay.app.definitions import default_definitions_text
    from leadrelay.app.replay import load_history, load_times

    settings = _settings()
    live = _definitions_or_exit(settings.definitions)
    since = _since(args.since)

    async def run() -> calibrate.Calibration:
        url, prefix = settings.database_url, settings.topic_prefix
        history = await load_history(url, since, topic_prefix=prefix)
        times = await load_times(url, topic_prefix=prefix)
        return await calibrate.calibrate(history, live, args.sql_value, times)

    result = asyncio.run(run())
    path = settings.definitions
    live_text = path.read_text(encoding="utf-8") if path else default_definitions_text()
    args.output.write_text(calibrate.draft_text(live_text, result, since), encoding="utf-8")
    if args.format == "json":
        print(json.dumps(calibrate.report(result) | {"draft": str(args.output)}, indent=2))
    else:
        print(calibrate.render_text(result) + f"\n\ndraft written to {args.output}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from leadrelay.app.bootstrap import serve
    from leadrelay.process import configure_logging, run_server

    configure_logging()
    return run_server(serve([args.service], _settings(), embedded=False))


def _up(args: argparse.Namespace) -> int:
    from leadrelay.app.bootstrap import serve
    from leadrelay.process import configure_logging, run_server

    configure_logging()
    settings = _settings()
    if settings.environment == "dev":
        settings = _dev_mode()
    return run_server(serve(SERVICES, settings, embedded=True))


def _dev_mode() -> Settings:
    """One warning line; on the first ``up`` of this directory, secrets made and shown once."""
    from leadrelay.credentials import generated_secrets, write_dev_secrets

    first_up = not DEV_SECRETS_FILE.exists()
    if first_up:
        write_dev_secrets(DEV_SECRETS_FILE, generated_secrets())
    print(
        f"leadrelay: WARNING: dev mode, not for the internet: secrets are this install's own, "
        f"from {DEV_SECRETS_FILE}; production needs LEADRELAY_ENVIRONMENT=production and "
        "real secrets",
        file=sys.stderr,
    )
    settings = _settings()
    if first_up:
        print(_first_up_note(settings, DEV_SECRETS_FILE))
    return settings


def _first_up_note(settings: Settings, path: Path) -> str:
    """Where the generated secrets are and the commands that use them, printed on the first
    ``up``. The values stay in the file: a terminal's scrollback or a captured log is no place
    for a secret, so the ``curl`` line reads the token as it runs."""
    base = f"http://{settings.http_host}:{settings.http_port}"
    lines = [
        f"leadrelay: generated per-install secrets in {path} (keep it private):",
        *(f"  LEADRELAY_{name.upper()}" for name in SECRET_SETTINGS),
        "leadrelay: try them (leadrelay simulate reads that file itself):",
        f"  leadrelay simulate --url {base}",
        f"  curl -H {bearer_header_word()} {base}/v1/reps",
    ]
    return "\n".join(lines)


def _simulate(args: argparse.Namespace) -> int:
    from leadrelay.app.simulate import run_simulation

    summary_ok: bool = asyncio.run(
        run_simulation(
            args.url, _settings(), visitors=args.visitors, seed=args.seed, within=args.timeout
        )
    )
    return 0 if summary_ok else 1
