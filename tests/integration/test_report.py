"""The daily risk report delivered: a photo with its caption through real python-telegram-bot
to the fake Bot API, the /report command's chart, the text alert without Telegram, and
`riskd report --png` as a user runs it."""

from __future__ import annotations

import io

import numpy as np
import yaml
from PIL import Image

from riskd import wording
from riskd.config import load_settings
from riskd.domain import EventKind
from riskd.supervisor import Daemon

from . import test_telegram
from .test_cli import riskd
from .test_telegram import ALICE, running, to

# test_telegram's fixtures, for these tests to ask for by name
api, clock, configure = test_telegram.api, test_telegram.clock, test_telegram.configure


def looks_drawn(image_bytes: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(image_bytes))
    assert image.format == "PNG" and image.size == (1000, 900)
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)[::7]
    assert len({tuple(pixel) for pixel in pixels}) > 50, "the chart is blank"
    return image


async def test_the_scheduled_report_arrives_as_a_photo_with_its_caption(configure, api, clock):
    async with running(configure(), clock, listen=False) as daemon:
        await daemon.tick("demo")
        clock.advance(60)
        await daemon.tick("demo")
        await daemon.send_report()
        photo = await api.wait_for_photo()
        reports = [event for event in daemon.store.events("demo", 50) if event.kind is EventKind.REPORT]
    assert len(reports) == 1 and reports[0].message.startswith("demo · today")  # recorded before it was sent
    assert photo["chat_id"] == ALICE["id"]
    assert photo["caption"].startswith("demo · today, since")
    for words in ("Equity 10,", "Exposure BTC/USDT:USDT +9,000", "leverage", "Stress: market -10%"):
        assert words in photo["caption"]
    looks_drawn(photo["image"])


async def test_the_report_is_scheduled_at_its_time(configure, api, clock, tmp_path):
    settings = configure()
    document = yaml.safe_load((tmp_path / "config.yaml").read_text()) | {"report": {"at": "21:00"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
    daemon = Daemon(load_settings(tmp_path / "config.yaml"), clock=clock)
    await daemon.startup()
    try:
        daemon._schedule()
        due = daemon.scheduler.get_job("report").next_run_time
        assert (due.utcoffset().total_seconds(), due.hour, due.minute) == (0, 21, 0)
    finally:
        await daemon.shutdown()
    assert settings.report.at is None  # off unless configured


async def test_the_report_command_answers_with_the_text_and_the_chart(configure, api, clock):
    async with running(configure(), clock) as daemon:
        await daemon.tick("demo")
        await api.command("/report", ALICE)
        await api.wait_for(to(ALICE, "Day PnL", "Exposure"))
        photo = await api.wait_for_photo()
    assert photo["chat_id"] == ALICE["id"] and photo["caption"] == ""
    looks_drawn(photo["image"])


async def test_without_telegram_the_report_goes_out_as_a_text_alert(configure, api, clock, tmp_path, monkeypatch):
    monkeypatch.delenv("RISKD_TELEGRAM__TOKEN")
    configure()
    document = yaml.safe_load((tmp_path / "config.yaml").read_text())
    del document["telegram"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
    daemon = Daemon(load_settings(tmp_path / "config.yaml"), clock=clock)
    await daemon.startup()
    try:
        await daemon.tick("demo")
        await daemon.send_report()
        alerts = [alert for alert in daemon.store.alerts(50) if alert.key.startswith("report:")]
        events = [event.message for event in daemon.store.events("demo", 50) if event.kind is EventKind.REPORT]
    finally:
        await daemon.shutdown()
    assert len(alerts) == 1 and alerts[0].text.startswith("demo · today") and "<b>" not in alerts[0].text
    assert events[-1] == wording.report_as_text()
    assert not api.photos


def test_riskd_report_png_writes_the_chart(workdir):  # noqa: F811 (the fixture)
    assert riskd(workdir, "run", "--once").returncode == 0
    result = riskd(workdir, "report", "--png", "report.png")
    assert result.returncode == 0, result.stderr
    assert "chart written to report.png" in result.stdout
    looks_drawn((workdir / "report.png").read_bytes())


def test_riskd_report_png_into_a_missing_folder_is_one_clear_line(workdir):  # noqa: F811 (the fixture)
    assert riskd(workdir, "run", "--once").returncode == 0
    result = riskd(workdir, "report", "--png", "missing/report.png")
    assert result.returncode == 1
    assert "cannot write the chart to missing/report.png: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
