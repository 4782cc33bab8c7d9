"""A fake Telegram Bot API server on loopback, for driving the real python-telegram-bot.

It speaks enough of https://core.telegram.org/bots/api for riskd's bot: getMe,
deleteWebhook, setMyCommands, getUpdates (long polling), sendMessage, editMessageText,
answerCallbackQuery and getChatMember, at `{url}/bot{token}/{method}`, answering a
wrong token with 401 like Telegram. Like Telegram it refuses HTML it cannot parse
(400), and shows the text of a message with its markup removed.

Tests play the people: `command()` sends a command as a user in a chat, `press()`
presses an inline button, `send_callback()` sends a press with any data, as a forger can; `messages` is what the bot said, as it stands after edits.
`fail()` makes it answer 502 pages or 429 with retry_after for a while. `settled()`,
`in_flight()` and `answered()` wait for what the bot has done, so a test that checks that
nothing happened checks it after a positive signal, not after a guessed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Callable

from aiohttp import web

BOT = {"id": 700001, "is_bot": True, "first_name": "riskd", "username": "riskd_test_bot"}
SETTLING = "cancel:never-issued"
"""The data of the press `settled()` sends: riskd never issued it, so it carries out nothing
and records it as a refused press, the command `button 'cancel:never-issued'`."""
TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a", "blockquote", "tg-spoiler", "span"}


def user(user_id: int, name: str) -> dict:
    return {"id": user_id, "is_bot": False, "first_name": name.title(), "username": name}


def private_chat(person: dict) -> dict:
    return {"id": person["id"], "type": "private", "first_name": person["first_name"], "username": person["username"]}


def group_chat(chat_id: int, title: str = "trading desk") -> dict:
    return {"id": chat_id, "type": "supergroup", "title": title}


@dataclass
class Fault:
    status: int
    methods: tuple[str, ...]
    until: float | None
    count: int | None
    retry_after: int | None
    latency: float = 0.0

    def applies(self, method: str, now: float) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.until is not None and now >= self.until:
            return False
        return self.count is None or self.count > 0


class _Text(HTMLParser):
    """Checks Telegram HTML the way Telegram does, and collects the plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in TAGS:
            raise ValueError(f"Unsupported start tag \"{tag}\"")
        self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            raise ValueError(f"Unmatched end tag \"{tag}\"")

    def handle_data(self, data):
        self.parts.append(data)


def plain_text(text: str) -> str:
    """The text Telegram shows for `text` in HTML mode, or ValueError like its 400 answer."""
    if re.search(r"<(?![a-zA-Z/])", text) or re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text):
        raise ValueError("Can't parse entities: unescaped < or &")
    parser = _Text()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise ValueError(f"Can't parse entities: unclosed tag \"{parser.open[-1]}\"")
    return "".join(parser.parts)  # entities already decoded by the parser


class FakeTelegram:
    """The Bot API for one bot token, with people, chats and faults under a test's control."""

    def __init__(self, token: str, clock: Callable[[], float] = time.time):
        self.token, self.clock = token, clock
        self.requests: list[dict] = []
        """Every call: its method, parameters, the status answered, and when (time.monotonic())."""
        self.messages: list[dict] = []
        self.photos: list[dict] = []
        """Every photo sent: chat id, caption (plain text), the image's bytes, width and height."""
        self.answers: list[dict] = []
        self.menu: list[dict] = []
        self.administrators: dict[int, set[int]] = {}
        self.unknown_chats: set[int] = set()
        """Chats Telegram answers "chat not found" for (a wrong id, a bot never added)."""
        self.blocked_chats: set[int] = set()
        """Chats whose person blocked the bot: Telegram answers 403 Forbidden."""
        self.faults: list[Fault] = []
        self.pending: list[str] = []
        """The methods of the calls that have arrived and are not yet answered."""
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- server ------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on an ephemeral loopback port; returns the base_url for python-telegram-bot."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/bot"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _parameters(request)
        self.pending.append(method)
        try:
            response = await self._answer(request.match_info["token"], method, params)
        finally:
            self.pending.remove(method)
        self.requests.append({"method": method, "params": params, "status": response.status, "at": time.monotonic()})
        return response

    async def _answer(self, token: str, method: str, params: dict) -> web.Response:
        if token != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        fault = next((fault for fault in self.faults if fault.applies(method, time.monotonic())), None)
        if fault is not None:
            if fault.count is not None:
                fault.count -= 1
            await asyncio.sleep(fault.latency)
            return _failure(fault)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        try:
            result = await handler(params)
        except PermissionError as error:
            return web.json_response({"ok": False, "error_code": 403, "description": f"Forbidden: {error}"}, status=403)
        except ValueError as error:
            return web.json_response({"ok": False, "error_code": 400, "description": f"Bad Request: {error}"}, status=400)
        return web.json_response({"ok": True, "result": result})

    # --- the Bot API -------------------------------------------------------------

    async def _getMe(self, params: dict) -> dict:
        return {**BOT, "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _deleteWebhook(self, params: dict) -> bool:
        return True

    async def _setMyCommands(self, params: dict) -> bool:
        self.menu = params["commands"]
        return True

    async def _getUpdates(self, params: dict) -> list[dict]:
        offset, timeout = int(params.get("offset") or 0), float(params.get("timeout") or 0)
        async with self._arrived:
            self._updates = [update for update in self._updates if update["update_id"] >= offset]
            if not self._updates and timeout:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._arrived.wait_for(lambda: bool(self._updates)), timeout)
            return list(self._updates)

    async def _sendMessage(self, params: dict) -> dict:
        chat_id = int(params["chat_id"])
        if chat_id in self.unknown_chats:
            raise ValueError("chat not found")
        if chat_id in self.blocked_chats:
            raise PermissionError("bot was blocked by the user")
        message = {
            "message_id": next(self._message_ids),
            "date": int(self.clock()),
            "chat": self._chat(chat_id),
            "from": BOT,
            "text": self._text(params),
            "html": params["text"],
            "silent": bool(params.get("disable_notification")),
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages.append(message)
        return _public(message)

    async def _sendPhoto(self, params: dict) -> dict:
        chat_id = int(params["chat_id"])
        if chat_id in self.unknown_chats:
            raise ValueError("chat not found")
        if chat_id in self.blocked_chats:
            raise PermissionError("bot was blocked by the user")
        upload = params.get("photo")
        if not hasattr(upload, "file"):
            raise ValueError("there is no photo in the request")
        image = upload.file.read()
        if image[:8] != b"\x89PNG\r\n\x1a\n":
            raise ValueError("IMAGE_PROCESS_FAILED")
        width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
        caption = params.get("caption") or ""
        caption = plain_text(caption) if params.get("parse_mode") == "HTML" else caption
        if len(caption) > 1024:
            raise ValueError("message caption is too long")
        number = next(self._message_ids)
        self.photos.append({"chat_id": chat_id, "caption": caption, "image": image, "width": width, "height": height})
        size = {"file_id": f"photo-{number}", "file_unique_id": f"unique-{number}", "width": width, "height": height,
                "file_size": len(image)}
        message = {"message_id": number, "date": int(self.clock()), "chat": self._chat(chat_id), "from": BOT, "photo": [size]}
        return {**message, "caption": caption} if caption else message

    async def _editMessageText(self, params: dict) -> dict:
        message = self.message(int(params["message_id"]))
        message.update(text=self._text(params), html=params["text"])
        message.pop("reply_markup", None)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return _public(message)

    async def _answerCallbackQuery(self, params: dict) -> bool:
        self.answers.append(params)
        return True

    async def _getChatMember(self, params: dict) -> dict:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        person = {"id": user_id, "is_bot": False, "first_name": "Someone"}
        if user_id in self.administrators.get(chat_id, set()):
            return {"status": "creator", "user": person, "is_anonymous": False}
        return {"status": "member", "user": person}

    def _text(self, params: dict) -> str:
        return plain_text(params["text"]) if params.get("parse_mode") == "HTML" else params["text"]

    def _chat(self, chat_id: int) -> dict:
        return {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}

    # --- what tests do -----------------------------------------------------------

    async def command(self, text: str, sender: dict, chat: dict | None = None) -> dict:
        """A person sends `text` (a command) in `chat` (their private chat by default)."""
        chat = chat or private_chat(sender)
        word = text.split(maxsplit=1)[0]
        message = {
            "message_id": next(self._message_ids), "date": int(self.clock()), "chat": chat, "from": sender, "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(word)}] if word.startswith("/") else [],
        }
        await self._push({"message": message})
        return message

    async def press(self, message: dict, label: str, sender: dict) -> str:
        """A person presses the inline button labelled `label` under one of the bot's messages."""
        buttons = [button for row in message["reply_markup"]["inline_keyboard"] for button in row]
        button = next(button for button in buttons if button["text"] == label)
        query_id = str(next(self._callback_ids))
        await self._push({"callback_query": {
            "id": query_id, "from": sender, "chat_instance": "1", "data": button["callback_data"], "message": _public(message),
        }})
        return query_id

    async def send_callback(self, data: str, sender: dict, message: dict | None = None) -> str:
        """A client sends a button press with any `data` at all, as a forger can (under
        `message`, or with no message, as for an inline one)."""
        query_id = str(next(self._callback_ids))
        query = {"id": query_id, "from": sender, "chat_instance": "1", "data": data}
        if message is not None:
            query["message"] = _public(message)
        await self._push({"callback_query": query})
        return query_id

    async def _push(self, update: dict) -> None:
        async with self._arrived:
            self._updates.append({"update_id": next(self._update_ids), **update})
            self._arrived.notify_all()

    def fail(self, status: int, *methods: str, seconds: float | None = None, count: int | None = None,
             retry_after: int | None = None, latency: float = 0.0) -> None:
        """Answer `status` to these methods (all when none) for a while, or a number of times,
        after `latency` seconds. Faults apply in the order they were added."""
        until = time.monotonic() + seconds if seconds is not None else None
        self.faults.append(Fault(status, methods, until, count, retry_after, latency))

    def heal(self) -> None:
        self.faults.clear()

    def message(self, message_id: int) -> dict:
        return next(message for message in self.messages if message["message_id"] == message_id)

    def said(self, chat_id: int | None = None) -> list[str]:
        return [message["text"] for message in self.messages if chat_id is None or message["chat"]["id"] == chat_id]

    def calls(self, method: str) -> list[dict]:
        return [call for call in self.requests if call["method"] == method]

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 5.0) -> dict:
        """The first message (as it stands now) that satisfies `predicate`, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((message for message in self.messages if predicate(message)), None)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no such message within {timeout}s; the bot said: {self.said()}")
            await asyncio.sleep(0.02)

    async def settled(self, sender: dict, chat: dict | None = None, timeout: float = 5.0) -> None:
        """Return once the bot has handled every update sent before this call.

        python-telegram-bot handles updates one at a time, in order. So `sender` presses a
        button in `chat` that the bot never made (riskd's buttons carry `confirm:` or
        `cancel:` and a token it issued): a bot answers every press, and this one is carried
        out by nobody (riskd records it as a refused press, whose data is `SETTLING`, and
        counts it towards its warning about strangers). Once that answer has come,
        everything sent before it has been handled. The answer is not kept in `answers`.
        """
        chat = chat or private_chat(sender)
        message = {"message_id": next(self._message_ids), "date": int(self.clock()), "chat": chat, "from": BOT, "text": "?"}
        query_id = str(next(self._callback_ids))
        await self._push({"callback_query": {
            "id": query_id, "from": sender, "chat_instance": "1", "data": SETTLING, "message": message,
        }})
        answer = await self._until(
            lambda: next((params for params in self.answers if str(params.get("callback_query_id")) == query_id), None),
            timeout, "the bot did not answer a press sent after the updates before it",
        )
        self.answers.remove(answer)

    async def in_flight(self, method: str, timeout: float = 5.0) -> None:
        """Return once a call to `method` has arrived and is still waiting for its answer."""
        await self._until(lambda: method in self.pending, timeout, f"no {method} call arrived")

    async def answered(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict]:
        """Return the calls to `method` once `count` of them have been answered."""
        return await self._until(
            lambda: len(self.calls(method)) >= count and self.calls(method), timeout, f"fewer than {count} {method} calls",
        )

    async def _until(self, found: Callable[[], object], timeout: float, failure: str):
        deadline = time.monotonic() + timeout
        while not (result := found()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{failure} within {timeout}s")
            await asyncio.sleep(0.02)
        return result


    async def wait_for_photo(self, timeout: float = 10.0) -> dict:
        """The first photo sent, waiting for it."""
        deadline = time.monotonic() + timeout
        while not self.photos:
            if time.monotonic() > deadline:
                raise AssertionError(f"no photo within {timeout}s; the bot said: {self.said()}")
            await asyncio.sleep(0.02)
        return self.photos[0]


async def _parameters(request: web.Request) -> dict:
    """python-telegram-bot posts form fields, JSON-encoding every value that is not a string."""
    if request.content_type == "application/json":
        return await request.json()
    form = await request.post() if request.can_read_body else {}
    fields = {**request.query, **form}
    return {key: value if key in ("text", "caption") else _decode(value) for key, value in fields.items()}


def _decode(value: str):
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _failure(fault: Fault) -> web.Response:
    if fault.status == 429:
        wait = fault.retry_after or 1
        body = {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {wait}",
                "parameters": {"retry_after": wait}}
        return web.json_response(body, status=429)
    page = f"<html><head><title>{fault.status}</title></head><body><h1>{fault.status}</h1></body></html>"
    return web.Response(status=fault.status, text=page, content_type="text/html")


def _public(message: dict) -> dict:
    """A message as the Bot API shows it (without the fake's own bookkeeping)."""
    return {key: value for key, value in message.items() if key not in ("html", "silent")}

