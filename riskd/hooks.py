"""Hooks: telling the bot, and anything else, when riskd reduces, halts, flattens or resumes an account.

Why: riskd cancels and closes, but the bot that caused the loss keeps running and
re-enters, and riskd then fights it on every tick. A hook tells the bot instead.

- `calls` (pure) says which hook calls a step causes: a change of state to reducing or
  to halted, a flatten, a return to active. The guard writes them to the `hooks` outbox
  in the same transaction as the step, so none is lost, and acts only afterwards.
- `HookSender`, a job of its own every second, delivers them: each hook's calls in
  order, every hook independently of the others, each attempt within its timeout, a
  failure retried with exponential backoff. A dead receiver therefore delays only its
  own hook, and never a tick.
- A lock file is state rather than news: `sync_lock_files` makes each exist exactly
  while the account is not active, at every step the guard records, before it acts.
- In dry-run riskd acts on nothing, so a hook that makes a bot or a script act
  (freqtrade, command, lock_file) is not called unless it says `in_dry_run: true`: its
  call is recorded, status `logged`, with what it would have done. Webhooks only tell,
  so they are called in both modes, with `live` in the body.

Webhook bodies are signed: `X-Riskd-Signature: sha256=<hex HMAC-SHA256 of the body
under the hook's secret>`. A command runs with the event in `RISKD_*` environment
variables and nothing else of riskd's environment, which holds its keys.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from riskd import __version__
from riskd.config import ActingHook, CommandHook, FreqtradeHook, Hook, LockFileHook, Settings, WebhookHook
from riskd.domain import (
    AccountState, ActionKind, Alert, AlertStatus, Event, EventKind, HookCall, HookTrigger, Severity, StepResult, TradingState,
    alert_key, frozen_mapping,
)
from riskd.redact import redact
from riskd.store import OutboxHook, Store

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("riskd.hooks")

BACKOFF = timedelta(seconds=2)
BACKOFF_MAX = timedelta(seconds=60)
"""A failed call is tried again after BACKOFF, doubling with each failure up to BACKOFF_MAX."""

SIGNATURE_HEADER = "X-Riskd-Signature"
RETRIED_STATUSES = {408, 425, 429}
"""HTTP refusals that mean "not now" rather than "never": retried like a 5xx or a network error."""

ENTERED = {TradingState.REDUCING: HookTrigger.REDUCING, TradingState.HALTED: HookTrigger.HALTED, TradingState.ACTIVE: HookTrigger.RESUME}


class Refused(Exception):
    """The receiver answered that it will never take this call: it is given up, not retried."""


def triggers(before: AccountState, result: StepResult) -> tuple[HookTrigger, ...]:
    """The moments a step is: the state it entered, if it changed, then a flatten if it ordered one."""
    found = []
    if result.state.trading_state is not before.trading_state:
        found.append(ENTERED[result.state.trading_state])
    if any(action.kind is ActionKind.FLATTEN for action in result.actions):
        found.append(HookTrigger.FLATTEN)
    return tuple(found)


def held(hook: Hook, live: bool) -> bool:
    """Whether a hook that makes something act is only recorded: in dry-run, unless it says `in_dry_run`."""
    return isinstance(hook, ActingHook) and not live and not hook.in_dry_run


def calls(account: str, hooks: Mapping[str, Hook], before: AccountState, result: StepResult, live: bool = True) -> list[HookCall]:
    """The hook calls a step causes, in the order they are to be made. A lock file held in
    dry-run gets one for each state it would have followed, so what it would have done is recorded."""
    made = []
    for trigger in triggers(before, result):
        for name, hook in hooks.items():
            if isinstance(hook, LockFileHook):
                if held(hook, live) and trigger is not HookTrigger.FLATTEN:
                    made.append(HookCall(account, name, hook.type, trigger, result.state.trading_state, result.state.reason))
                continue  # otherwise kept in step with the state by sync_lock_files, not called
            if trigger not in hook.events or (isinstance(hook, FreqtradeHook) and _freqtrade_requests(hook, trigger) == ()):
                continue
            made.append(HookCall(account, name, hook.type, trigger, result.state.trading_state, result.state.reason))
    return made


def sync_lock_files(hooks: Mapping[str, Hook], state: AccountState, live: bool = True) -> dict[str, str]:
    """Make each lock file exist exactly while the account is not active, the reason inside
    (in dry-run only those that say `in_dry_run`); returns why each that could not be made so failed.

    Run at every step the guard records, so a file removed by hand or a write that
    failed is put right on the next tick. A failure never stops a tick: the guard raises
    an alert when one starts failing (`lock_file_failed`), since the bot then trades on.
    """
    failing = {}
    for name, hook in hooks.items():
        if not isinstance(hook, LockFileHook) or held(hook, live):
            continue
        try:
            _sync_lock_file(hook.path, state)
        except OSError as error:
            failing[name] = redact(f"{hook.path}: {error.strerror or error}")
            log.error("%s: lock file hook %s: %s", state.account, name, failing[name])
    return failing


def lock_file_failed(account: str, hook: str, problem: str, state: AccountState) -> tuple[Event, Alert]:
    """The event and critical alert of a lock file that could not be brought in line with the state."""
    meant = "exist" if state.trading_state is not TradingState.ACTIVE else "be removed"
    text = (f"Lock file hook {hook} failed: {problem}. The file should {meant} while the account is "
            f"{state.trading_state}: a bot that checks it may be trading. riskd tries again at every tick.")
    event = Event(account, EventKind.LOCK_FILE_FAILED, text, severity=Severity.CRITICAL, data=frozen_mapping({"hook": hook}))
    return event, Alert(account, Severity.CRITICAL, alert_key(EventKind.LOCK_FILE_FAILED, hook), text)


def _sync_lock_file(path: Path, state: AccountState) -> None:
    if state.trading_state is TradingState.ACTIVE:
        path.unlink(missing_ok=True)
        return
    since = f"since {state.since.isoformat()}\n" if state.since else ""
    text = f"{state.trading_state}: {state.reason}\n{since}"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    written = path.with_name(f".{path.name}.riskd")
    written.write_text(text, encoding="utf-8")
    os.replace(written, path)  # whoever reads it sees the whole reason or no file, never half of it


def payload(call: OutboxHook, live: bool) -> dict:
    """The event as a webhook's JSON body and a command's environment carry it; `live` says
    whether riskd itself acts on the exchange (webhooks are called in dry-run too)."""
    return {
        "id": call.id,
        "account": call.account,
        "hook": call.hook,
        "event": str(call.trigger),
        "state": str(call.state),
        "reason": call.reason,
        "at": call.at.isoformat(),
        "live": live,
        "version": __version__,
    }


def sign(secret: str, body: bytes) -> str:
    """The value of the X-Riskd-Signature header for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HookSender:
    """Drains the hook outbox: every hook's due calls, hooks side by side, each in order."""

    def __init__(self, settings: Callable[[], Settings], store: Store, clock: Callable[[], datetime]):
        self.settings, self.store, self.clock = settings, store, clock
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self) -> None:
        queues = self.store.due_hooks(self.clock())
        await asyncio.gather(*(self._drain(queue) for queue in queues.values()))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _drain(self, queue: Iterable[OutboxHook]) -> None:
        """Call one hook's due calls in order; stop at the first that must be tried again."""
        for call in queue:
            account = self.settings().accounts.get(call.account)
            hook = account.hooks.get(call.hook) if account is not None else None
            if hook is None or hook.type != call.kind:
                self.store.mark_hook(call.id, self.clock(), AlertStatus.FAILED, error="the hook is no longer configured")
                continue
            if isinstance(hook, LockFileHook) or held(hook, self.settings().live):
                said = f"dry-run: not called; would have {would(hook, call)}"
                self.store.mark_hook(call.id, self.clock(), AlertStatus.LOGGED, outcome=redact(said))
                log.info("%s: hook %s, %s: %s", call.account, call.hook, call.trigger, redact(said))
                continue
            try:
                outcome = await asyncio.wait_for(self._call(hook, call), hook.timeout.total_seconds())
            except Refused as error:
                self.store.mark_hook(call.id, self.clock(), AlertStatus.FAILED, error=redact(str(error)))
                log.error("%s: hook %s refused the %s call for good: %s", call.account, call.hook, call.trigger, redact(str(error)))
                continue
            except Exception as error:  # a network failure, a 5xx, a time limit, a failed command: tried again
                if not self._retry(hook, call, _describe(error, hook)):
                    continue
                return
            self.store.mark_hook(call.id, self.clock(), AlertStatus.SENT, outcome=redact(outcome))
            log.info("%s: hook %s called for %s: %s", call.account, call.hook, call.trigger, redact(outcome))

    def _retry(self, hook: Hook, call: OutboxHook, problem: str) -> bool:
        """Schedule the call again after a backoff; False when a command has used its attempts."""
        now, problem = self.clock(), redact(problem)
        if isinstance(hook, CommandHook) and call.attempts + 1 >= hook.attempts:
            self.store.mark_hook(call.id, now, AlertStatus.FAILED, error=problem)
            log.error("%s: hook %s gave up the %s call after %d attempts: %s", call.account, call.hook, call.trigger, hook.attempts, problem)
            return False
        delay = min(BACKOFF * 2 ** min(call.attempts, 20), BACKOFF_MAX)
        self.store.mark_hook(call.id, now, AlertStatus.PENDING, error=problem, retry_at=now + delay)
        log.warning("%s: hook %s: the %s call failed (%s); next try in %.0fs", call.account, call.hook, call.trigger, problem, delay.total_seconds())
        return True

    async def _call(self, hook: Hook, call: OutboxHook) -> str:
        match hook:
            case WebhookHook():
                return await self._webhook(hook, call)
            case CommandHook():
                return await _command(hook, payload(call, self.settings().live))
            case FreqtradeHook():
                return await self._freqtrade(hook, call)
            case LockFileHook():
                raise Refused("a lock file is not called")  # _drain records its rows (dry-run only) without a call

    async def _webhook(self, hook: WebhookHook, call: OutboxHook) -> str:
        body = json.dumps(payload(call, self.settings().live)).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(hook.secret.get_secret_value(), body),
            "X-Riskd-Event": str(call.trigger),
            "X-Riskd-Delivery": str(call.id),
        }
        return await self._post(hook.url, body, headers)

    async def _freqtrade(self, hook: FreqtradeHook, call: OutboxHook) -> str:
        credentials = f"{hook.username.get_secret_value()}:{hook.password.get_secret_value()}"
        headers = {"Content-Type": "application/json", "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
        answers = []
        for endpoint, body in _freqtrade_requests(hook, call.trigger):
            data = json.dumps(body).encode() if body is not None else b""
            answer = await self._post(f"{hook.url}/api/v1/{endpoint}", data, headers)
            answers.append(f"{endpoint}: {answer}")
        return "; ".join(answers)

    async def _post(self, url: str, body: bytes, headers: dict) -> str:
        """POST and return "HTTP <status> <start of the answer>"; a refusal raises Refused, a failure raises."""
        import aiohttp  # loaded only when a hook is configured

        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(url, data=body, headers=headers) as response:
            text = (await response.text(errors="replace")).strip()[:200]
            said = f"HTTP {response.status}" + (f" {text}" if text else "")
            if response.status < 300:
                return said
            if response.status < 500 and response.status not in RETRIED_STATUSES:
                raise Refused(said)
            raise ConnectionError(said)


def would(hook: Hook, call: OutboxHook) -> str:
    """What a hook held in dry-run would have done for `call`, in words."""
    match hook:
        case FreqtradeHook():
            return "called Freqtrade's " + ", then ".join(f"POST /api/v1/{endpoint}" + (f" {json.dumps(body)}" if body else "")
                                                           for endpoint, body in _freqtrade_requests(hook, call.trigger))
        case CommandHook():
            return f"run {' '.join(hook.run)}"
        case LockFileHook():
            return f"removed {hook.path}" if call.state is TradingState.ACTIVE else f"written {hook.path}"
    return "called it"


def _freqtrade_requests(hook: FreqtradeHook, trigger: HookTrigger) -> tuple[tuple[str, dict | None], ...]:
    """The REST calls for a moment, in order: the maintainers' safe stop is stopentry, then forceexit."""
    match trigger:
        case HookTrigger.REDUCING | HookTrigger.HALTED:
            return (("stopentry", None),)
        case HookTrigger.FLATTEN:
            return (("stopentry", None), ("forceexit", {"tradeid": "all"}))
        case HookTrigger.RESUME:
            return ((hook.on_resume, None),) if hook.on_resume else ()


async def _command(hook: CommandHook, event: dict) -> str:
    """Run the program with the event in its environment; killed (with its children) at the time limit."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    environment.update({f"RISKD_{key.upper()}": str(value).lower() if isinstance(value, bool) else str(value) for key, value in event.items()})
    environment["RISKD_EVENT_JSON"] = json.dumps(event)
    process = await asyncio.create_subprocess_exec(
        *hook.run, env=environment, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    try:
        _, errors = await process.communicate()
    except asyncio.CancelledError:  # the time limit: wait_for cancels us
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await process.wait()
        raise
    said = errors.decode(errors="replace").strip().splitlines()[-1:] if errors else []
    if process.returncode != 0:
        raise ChildProcessError(f"exit status {process.returncode}" + (f": {said[0][:200]}" if said else ""))
    return "exit status 0"


def _describe(error: BaseException, hook: Hook) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return f"no answer within {hook.timeout.total_seconds():g}s" + (" (killed)" if isinstance(hook, CommandHook) else "")
    if isinstance(hook, CommandHook) and isinstance(error, FileNotFoundError | PermissionError):
        return f"cannot run {hook.run[0]}: {error.strerror}"
    return str(error) or type(error).__name__
