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
from datetime import datetime
from pathlib import Path

from riskd import __version__, logs
from riskd.commands import AccountStatus, Refusal, report, resolve_accounts, status, submit, utcnow, wait_for
from riskd.config import ConfigError, Settings, load_settings
from riskd.domain import CommandKind
from riskd.store import Store, StoreError
from riskd.units import format_duration, format_money, format_percent, parse_percent

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
    commands.add_parser("status", help="each account's state, figures and breakers")
    commands.add_parser("report", help="today so far, the last 24 hours' risk figures and a stress test")
    events = commands.add_parser("events", help="recent events: warnings, breaches, actions, commands")
    events.add_argument("--account", help="only this account")
    events.add_argument("-n", "--limit", type=_count, default=20, help="how many (default 20)")
    freeze = commands.add_parser("freeze", help="halt trading on an account (all when none is named)")
    freeze.add_argument("account", nargs="?")
    freeze.add_argument("--reason", default="", help="why, for the record")
    resume = commands.add_parser("resume", help="make a halted or reducing account active again")
    resume.add_argument("account", nargs="?")
    flatten = commands.add_parser("flatten", help="cancel every order and close every position, then halt")
    flatten.add_argument("account", nargs="?")
    flatten.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    flatten.add_argument("--reason", default="", help="why, for the record")
    reduce = commands.add_parser("reduce", help="reduce every position of an account by a percentage")
    reduce.add_argument("account")
    reduce.add_argument("percent", type=_percent, help="such as 25%%")
    reduce.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sim = commands.add_parser("sim", help="run the embedded exchange simulator on its own")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--scenario", choices=["crash", "flash_crash", "volatility_spike", "liquidation_cascade"])
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    demo = commands.add_parser("demo", help="watch riskd stop a simulated crash, in about a minute")
    demo.add_argument("--seconds", type=float, default=60.0, help="how long the demo runs")
    return root


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return number


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
    from riskd.supervisor import Daemon

    logging.getLogger("riskd").setLevel(logging.ERROR)  # the findings, not the daemon's start banner

    async def check() -> int:
        daemon = Daemon(settings, store=Store(":memory:"))
        await daemon.startup()
        trouble, findings = 0, []
        try:
            for runner in daemon.runners.values():
                snapshot = await runner.adapter.snapshot()
                if not snapshot.ok:
                    trouble += 1
                    print(f"{runner.name}: UNREACHABLE: {snapshot.error}")
                    continue
                print(
                    f"{runner.name}: ok, {runner.config.exchange}, equity {format_money(snapshot.equity, snapshot.quote)}, "
                    f"{len(snapshot.positions)} position(s), {len(snapshot.orders)} open order(s), "
                    f"read in {snapshot.latency * 1000:.0f} ms"
                )
                for position in snapshot.positions:
                    print(f"  {position.key}: {position.side} {position.contracts:g}, {format_money(position.notional, snapshot.quote)}")
                findings += await checks.account(runner.name, runner.config, runner.adapter.client)
        finally:
            await daemon.shutdown()
        env_file = Path(arguments.env_file or ".env")
        findings += await checks.local(settings, env_file if env_file.is_file() else None)
        for finding in findings:
            print(finding)
        trouble += sum(finding.level == checks.FAILURE for finding in findings)
        mode = "LIVE (orders will be sent)" if settings.live else "DRY-RUN (no order will be sent)"
        print(f"mode: {mode}; configuration ok")
        print(f"NOT safe to start: {trouble} problem(s) above" if trouble else "safe to start")
        return TROUBLE if trouble else 0

    return asyncio.run(check())


def _status(settings: Settings, arguments: argparse.Namespace) -> int:
    store = Store(settings.database)
    for account in status(store, settings):
        print(render_status(account, utcnow()))
    return 0


def render_status(account: AccountStatus, now: datetime) -> str:
    """A readable block for one account: state, figures, and every breaker."""
    from riskd.breakers import BREAKERS

    mode = "LIVE" if account.live else "DRY-RUN"
    since = f" since {account.since:%Y-%m-%d %H:%M:%S} UTC" if account.since else ""
    lines = [f"{account.account} ({account.exchange}, {mode}): {account.trading_state.upper()}{since}"]
    if account.reason and account.trading_state != "active":
        lines.append(f"  reason: {account.reason}")
    if account.updated_at is None:
        lines.append("  no tick recorded yet: is riskd running?")
        return "\n".join(lines)
    age = format_duration(max(0.0, (now - account.updated_at).total_seconds()))
    equity = format_money(account.equity, account.quote) if account.equity is not None else "unknown"
    drawdown = format_percent(account.drawdown) if account.drawdown is not None else "n/a"
    pnl = "n/a"
    if account.day_pnl is not None and account.day_start_equity:
        pnl = f"{account.day_pnl:+,.2f} {account.quote} ({account.day_pnl / account.day_start_equity * 100:+.1f}%)"
    lines.append(f"  equity {equity}   drawdown {drawdown}   day PnL {pnl}   last tick {age} ago")
    lines.append(f"  {'breaker':<34} {'value':>10} {'limit':>10}  status")
    for reading in account.readings:
        describe = BREAKERS[reading.breaker].describe if reading.breaker in BREAKERS else str
        name = reading.key
        value = describe(reading.value) if reading.value is not None else "-"
        lines.append(f"  {name:<34} {value:>10} {describe(reading.limit):>10}  {reading.status.upper()}")
    for position in account.positions:
        lines.append(
            f"  position {position['symbol']}: {position['side']} {position['contracts']:g}, "
            f"{format_money(position['notional'], account.quote)}, uPnL {position['unrealized_pnl']:+,.2f}"
        )
    return "\n".join(lines)


def _report(settings: Settings, arguments: argparse.Namespace) -> int:
    from riskd import messages

    now = utcnow()
    print(messages.plain(messages.report(report(Store(settings.database), settings, now), now)))
    return 0


def _events(settings: Settings, arguments: argparse.Namespace) -> int:
    if arguments.account is not None:
        resolve_accounts(settings, arguments.account)
    rows = Store(settings.database).events(arguments.account, arguments.limit)
    for row in rows:
        breaker = f" [{row['breaker']}]" if row["breaker"] else ""
        print(f"{row['at'][:19]}  {row['account']:<12} {row['severity']:<9} {row['kind']}{breaker}: {row['message']}")
    if not rows:
        print("no events recorded yet")
    return 0


def _control(kind: CommandKind):
    def handle(settings: Settings, arguments: argparse.Namespace) -> int:
        target = arguments.account or "every account"
        if kind in (CommandKind.FLATTEN, CommandKind.REDUCE) and not arguments.yes:
            what = "flatten" if kind is CommandKind.FLATTEN else f"reduce every position by {format_percent(arguments.percent)} on"
            live = "LIVE: real orders will be sent" if settings.live else "dry-run: nothing will be sent"
            answer = input(f"{what} {target}? ({live}) Type yes to confirm: ") if sys.stdin.isatty() else ""
            if answer.strip().lower() != "yes":
                print("not confirmed; nothing done (use --yes to skip the question)")
                return TROUBLE
        store = Store(settings.database)
        ids = submit(
            store, settings, kind, arguments.account, "cli", getpass.getuser(), utcnow(),
            reason=getattr(arguments, "reason", ""), fraction=getattr(arguments, "percent", None),
        )
        rows = asyncio.run(wait_for(store, ids, timeout=5.0))
        failed = 0
        for row in rows:
            if row["status"] == "pending":
                print(f"{row['account']}: queued; no running riskd has picked it up yet (it will within 5 minutes of starting)")
            else:
                failed += row["status"] != "done"
                print(f"{row['account']}: {row['status']}: {row['result']}")
        return TROUBLE if failed else 0

    return handle


def _sim(arguments: argparse.Namespace) -> int:
    from riskd.sim.server import serve

    logs.setup("INFO")
    try:
        asyncio.run(serve(arguments.host, arguments.port, arguments.seed, arguments.scenario, arguments.latency))
    except KeyboardInterrupt:
        pass
    return 0


HANDLERS = {
    "run": _run,
    "check": _check,
    "status": _status,
    "events": _events,
    "report": _report,
    "freeze": _control(CommandKind.FREEZE),
    "resume": _control(CommandKind.RESUME),
    "flatten": _control(CommandKind.FLATTEN),
    "reduce": _control(CommandKind.REDUCE),
}
