"""The `riskd` command line: a thin layer of parsing and printing over riskd's library.

Exit status: 0 success, 1 a command that ran but found trouble (an unreachable
account, a refused request), 2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path

from riskd import __version__, logs, messages, wording
from riskd.commands import (
    BREAKER,
    CATALOGUE,
    COUNT,
    LASTING,
    LIMIT,
    PERCENT,
    REASON,
    Refusal,
    Shown,
    Verb,
    events,
    overview,
    overriding,
    report,
    resolve_accounts,
    submit,
    wait_for,
)
from riskd.config import ConfigError, Settings, load_settings
from riskd.domain import CommandStatus, LimitOverride, utcnow
from riskd.store import Store, StoreError
from riskd.units import format_money, parse_duration, parse_percent

CONFIG_ERROR, TROUBLE = 2, 1


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="riskd", description="A risk guardian for crypto trading accounts.")
    root.add_argument("--config", metavar="PATH", help="configuration file (default: $RISKD_CONFIG or ./config.yaml)")
    root.add_argument("--env-file", metavar="PATH", help="environment file with the secrets (default: ./.env)")
    root.add_argument("--version", action="version", version=f"riskd {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the guardian until stopped")
    run.add_argument("--once", action="store_true", help="one tick per account, then exit")
    commands.add_parser(
        "check", help="validate the configuration, reach every account, say whether riskd is safe to start (exit 0)"
    )
    for verb in CATALOGUE:
        _add_verb(commands, verb)
    sim = commands.add_parser("sim", help="run the embedded exchange simulator on its own")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--scenario", choices=["crash", "flash_crash", "volatility_spike", "liquidation_cascade"])
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    sim.add_argument(
        "--venue", choices=["binance", "bybit"], default="binance",
        help="the dialect to point ccxt at: Binance USDⓈ-M (binanceusdm) or Bybit v5 (bybit); the banner gives its ccxt settings",
    )
    sim.add_argument("--hedge", action="store_true", help="the futures account in hedge mode: a long and a short side per symbol")
    demo = commands.add_parser("demo", help="watch riskd stop a simulated crash, in about a minute")
    demo.add_argument("--seconds", type=float, default=60.0, help="how long the demo runs")
    return root


def _add_verb(commands: argparse._SubParsersAction, verb: Verb) -> None:
    """One catalogue command as a subcommand: its help, its arguments spelled the CLI's way."""
    command = commands.add_parser(verb.name, help=verb.help, description=verb.help)
    for argument in verb.arguments:
        if argument == COUNT:
            command.add_argument("-n", "--limit", metavar=argument.name, type=_count, default=20, help=f"{argument.help} (default 20)")
        elif argument == REASON:
            command.add_argument("--reason", default="", help=argument.help)
        elif argument == PERCENT:
            command.add_argument("percent", metavar=argument.name, type=_percent, help=argument.help.replace("%", "%%"))
        elif argument in (BREAKER, LIMIT):
            command.add_argument(argument.name.lower(), metavar=argument.name, help=argument.help.replace("%", "%%"))
        elif argument == LASTING:
            command.add_argument("--for", dest="lasting", metavar=argument.name, type=_duration, required=True, help=argument.help)
        else:  # the account, named or left out
            command.add_argument("account", metavar=argument.name, nargs=None if argument.required else "?", help=argument.help)
    if verb.shown is Shown.EVENTS:  # the terminal can narrow the list to one account
        command.add_argument("--account", help="only this account")
    if verb.shown is Shown.REPORT:  # the terminal writes the chart to a file; Telegram sends it as a photo
        command.add_argument(
            "--png", metavar="FILE", help="also draw the chart to FILE (with several accounts, FILE-ACCOUNT.png each)"
        )
    if verb.destructive:
        command.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return number


def _duration(text: str):
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _percent(text: str) -> float:
    try:
        return parse_percent(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        if arguments.command == "sim":
            return _sim(arguments)
        if arguments.command == "demo":
            from riskd.demo import run_demo

            return asyncio.run(run_demo(arguments.seconds))
        settings = _load(arguments)
        logs.setup(settings.log_level, settings.log_format)
        return HANDLERS[arguments.command](settings, arguments)
    except ConfigError as error:
        print(f"riskd: configuration error:\n{_indent(str(error))}", file=sys.stderr)
        return CONFIG_ERROR
    except (Refusal, StoreError) as error:
        print(f"riskd: {error}", file=sys.stderr)
        return TROUBLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `riskd status | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _load(arguments: argparse.Namespace) -> Settings:
    """The configuration, with secrets from the file given by --env-file instead of ./.env."""
    if arguments.env_file is None:
        return load_settings(arguments.config)
    if not os.path.isfile(arguments.env_file):  # os.path: a name too long is "not found", not a traceback
        raise ConfigError(f"{arguments.env_file}: env file not found (--env-file)")
    return load_settings(arguments.config, _env_file=arguments.env_file)


def _run(settings: Settings, arguments: argparse.Namespace) -> int:
    from riskd.supervisor import Daemon

    asyncio.run(Daemon(settings, loader=lambda: _load(arguments)).run(once=arguments.once))
    return 0


def _check(settings: Settings, arguments: argparse.Namespace) -> int:
    """Exit 0 only when riskd is safe to start: every account read, no failed check."""
    from riskd import checks
    from riskd.guard import connect

    logging.getLogger("riskd").setLevel(logging.ERROR)  # the findings, not the exchange clients' chatter

    async def check() -> int:
        trouble, findings = 0, []
        for name, account in settings.accounts.items():
            adapter, sim = await connect(name, account, utcnow)
            try:
                snapshot = await adapter.snapshot()
                if not snapshot.ok:
                    trouble += 1
                    print(f"{name}: UNREACHABLE: {snapshot.error}")
                    continue
                print(
                    f"{name}: ok, {account.exchange}, equity {format_money(snapshot.equity, snapshot.quote)}, "
                    f"{len(snapshot.positions)} position(s), {len(snapshot.orders)} open order(s), "
                    f"read in {snapshot.latency * 1000:.0f} ms"
                )
                for line in await checks.understanding(adapter, snapshot):
                    print(f"  {line}")
                for position in snapshot.positions:
                    print(f"  {position.key}: {position.side} {position.contracts:g}, {format_money(position.notional, snapshot.quote)}")
                print(f"  limits{f' (preset {preset})' if (preset := account.preset or settings.preset) else ''}:")
                for line in messages.limits(settings.breakers_for(name)):
                    print(f"    {line}")
                findings += await checks.account(name, account, adapter.client)
            finally:
                await adapter.close()
                if sim is not None:
                    await sim.stop()
        if settings.portfolio is not None:
            print(f"portfolio: every account summed in {settings.portfolio.currency}; limits:")
            for line in messages.limits(settings.portfolio.breakers_in_force()):
                print(f"    {line}")
        env_file = Path(arguments.env_file or ".env")
        findings += checks.budgets(settings)
        findings += await checks.local(settings, env_file if env_file.is_file() else None)
        for finding in findings:
            print(finding)
        trouble += sum(finding.level == checks.FAILURE for finding in findings)
        print(f"mode: {wording.mode(settings.live)}; configuration ok")
        print(f"NOT safe to start: {trouble} problem(s) above" if trouble else "safe to start")
        return TROUBLE if trouble else 0

    return asyncio.run(check())


def _status(settings: Settings, arguments: argparse.Namespace) -> int:
    table = messages.status_table(overview(Store(settings.database), settings), utcnow())
    if table:
        print(table)
    return 0


def _report(settings: Settings, arguments: argparse.Namespace) -> int:
    now = utcnow()
    reports = report(Store(settings.database), settings, now)
    print(messages.plain(messages.report(reports, now)))
    if arguments.png:
        from riskd import chart  # matplotlib is loaded only when a chart is drawn

        target = Path(arguments.png)
        for day in reports:
            path = target if len(reports) == 1 else target.with_name(f"{target.stem}-{day.status.account}{target.suffix or '.png'}")
            try:
                path.write_bytes(chart.render(day))
            except OSError as error:
                print(f"riskd: cannot write the chart to {path}: {error.strerror or error}", file=sys.stderr)
                return 1
            print(f"chart written to {path}")
    return 0


def _events(settings: Settings, arguments: argparse.Namespace) -> int:
    print(messages.events_table(events(Store(settings.database), settings, arguments.account, arguments.limit)))
    return 0


def _control(verb: Verb):
    def handle(settings: Settings, arguments: argparse.Namespace) -> int:
        override = None
        if hasattr(arguments, "lasting"):
            override = LimitOverride(arguments.breaker, arguments.limit, arguments.lasting)
            for name in resolve_accounts(settings, arguments.account):
                overriding(settings, name, override)  # a wrong breaker or limit is said before the question
        if verb.destructive and not arguments.yes:
            target = messages.target(arguments.account, settings.accounts)
            fraction = getattr(arguments, "percent", None)
            question = messages.plain(messages.question(verb.kind, target, settings.live, fraction, override))
            answer = input(f"{question} Type yes to confirm: ") if sys.stdin.isatty() else ""
            if answer.strip().lower() != "yes":
                print("not confirmed; nothing done (use --yes to skip the question)")
                return TROUBLE
        store = Store(settings.database)
        ids = submit(
            store, settings, verb.kind, arguments.account, "cli", getpass.getuser(), utcnow(),
            reason=getattr(arguments, "reason", ""), fraction=getattr(arguments, "percent", None), override=override,
        )
        rows = asyncio.run(wait_for(store, ids, timeout=5.0))
        failed = 0
        for row in rows:
            if row.status is CommandStatus.PENDING:
                print(f"{row.account}: queued; no running riskd has picked it up yet (it will within 5 minutes of starting)")
            else:
                failed += row.status is not CommandStatus.DONE
                print(f"{row.account}: {row.status}: {row.result}")
        return TROUBLE if failed else 0

    return handle


def _sim(arguments: argparse.Namespace) -> int:
    from riskd.sim.server import serve

    logs.setup("INFO")
    try:
        asyncio.run(serve(
            arguments.host, arguments.port, arguments.seed, arguments.scenario, arguments.latency,
            arguments.venue, arguments.hedge,
        ))
    except KeyboardInterrupt:
        pass
    return 0


SHOWN = {Shown.ACCOUNTS: _status, Shown.EVENTS: _events, Shown.REPORT: _report}
"""How the CLI shows each kind of result; a control command's outcome is printed by `_control`."""

HANDLERS = {
    "run": _run,
    "check": _check,
    **{verb.name: _control(verb) if verb.kind else SHOWN[verb.shown] for verb in CATALOGUE},
}
