"""``radar demo``'s delivery report (tools/demo_notify.py), against its real local receiver on
loopback: what a person reads, and no "first 0 messages" when nothing was delivered."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from streams.settings import load_settings
from tools.demo_notify import DemoNotify

SLACK = {"blocks": [
    {"type": "header", "text": {"type": "plain_text", "text": "Champion left"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*<https://crm/a|Acme>* lost its champion"}},
]}


def _post(url: str, body: dict[str, object], key: str) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Idempotency-Key": key})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status < 300


def test_the_report_shows_the_messages_received_and_says_so_when_there_are_none(
        tmp_path: Path) -> None:
    settings = load_settings({"RADAR_LOCAL_DIR": str(tmp_path)})
    demo = DemoNotify(settings)
    try:
        assert demo.path == tmp_path / "demo" / "notify.toml" and demo.path.is_file()
        nothing = demo.report("http://127.0.0.1:9/metrics")  # no notifier: no outcomes
        assert nothing.splitlines()[0] == ("0 Slack message(s) and 0 webhook call(s) received "
                                           "by the local receiver.")
        assert "first" not in nothing and "│" not in nothing

        _post(demo.receiver.url("slack"), SLACK, "s1:cs-team")
        _post(demo.receiver.url("slack"), SLACK, "s1:cs-team")  # the same key again
        _post(demo.receiver.url("hook"), {"signal": {"id": "s1"}}, "s1:crm-hook")
        report = demo.report("http://127.0.0.1:9/metrics")
    finally:
        demo.close()
    lines = report.splitlines()
    assert lines[0] == ("2 Slack message(s) and 1 webhook call(s) received by the local "
                        "receiver; the first 2 as the channel shows them:")
    assert "  │ CHAMPION LEFT" in lines and "  │ Acme lost its champion" in lines
    assert lines[-1] == "  deliveries received twice by the receiver: 1"
