"""The alert-delivery part of ``radar demo`` (SPEC sections 8 and 10): a local receiver stands
in for Slack and a CRM webhook, ``radar notify`` is routed to it, and once the world has
streamed the demo shows a few messages as a person reads them, and what became of every alert.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.request
from collections import Counter
from typing import Any

from streams.settings import Settings
from tools.local_receiver import Receiver, ReceiverThread

SHOWN_MESSAGES = 3
# the demo's world is a year of history streamed in minutes: its alerts are about events of up
# to a year ago, which a real deployment's max_age (24 h) records as stale and does not push
CONFIG = """# written by radar demo: alerts to a local receiver standing in for Slack and a CRM
max_age = "P3650D"
give_up_after = "PT30S"
account_url = "https://crm.example.com/accounts/{{account_id}}"

[[destination]]
name = "cs-team"
kind = "slack"
url = "{base}/slack"

[[destination]]
name = "crm-hook"
kind = "webhook"
url = "{base}/hook"
secret = "{secret}"

[[route]]
destination = "cs-team"
types = ["champion_left", "renewal_at_risk", "succession_overdue"]

[[route]]
destination = "crm-hook"
"""


class DemoNotify:
    """The receiver, and the configuration ``radar notify`` reads in the demo."""

    def __init__(self, settings: Settings) -> None:
        self.thread = ReceiverThread(Receiver())
        self.receiver = self.thread.start()
        base = f"http://127.0.0.1:{self.receiver.port}"
        self.path = settings.local / "demo" / "notify.toml"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(CONFIG.format(base=base, secret=secrets.token_hex(16)))

    def env(self) -> dict[str, str]:
        return {"RADAR_NOTIFY_CONFIG": str(self.path)}

    def close(self) -> None:
        self.thread.stop()

    def report(self, metrics_url: str) -> str:
        """A few delivered messages as a person reads them, and the outcomes counted."""
        slack = self.receiver.delivered("slack")
        hooks = self.receiver.delivered("hook")
        lines = [f"{len(slack)} Slack message(s) and {len(hooks)} webhook call(s) received by "
                 "the local receiver" + (f"; the first {min(SHOWN_MESSAGES, len(slack))} as the "
                                         "channel shows them:" if slack else ".")]
        for r in slack[:SHOWN_MESSAGES]:
            lines += ["", *("  │ " + line for line in render_slack(json.loads(r.body)))]
        repeated = sum(n - 1 for n in (self.receiver.counts("slack") +
                                       self.receiver.counts("hook")).values() if n > 1)
        lines += ["", "outcomes counted by radar notify (radar_notify_deliveries_total):"]
        outcomes = scrape_outcomes(metrics_url)
        for (destination, outcome), n in sorted(outcomes.items()):
            if n:
                lines.append(f"  {destination:<10} {outcome:<14} {n:>6}")
        lines.append(f"  deliveries received twice by the receiver: {repeated}")
        return "\n".join(lines)


def scrape_outcomes(metrics_url: str) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as page:
            text = page.read().decode()
    except OSError:
        return found
    pattern = re.compile(r'radar_notify_deliveries_total\{destination="([^"]+)",'
                         r'outcome="([^"]+)"\} ([0-9.e+]+)')
    for m in pattern.finditer(text):
        found[(m.group(1), m.group(2))] = int(float(m.group(3)))
    return found


def render_slack(message: dict[str, Any]) -> list[str]:
    """A Block Kit message as plain lines: the header, the text, the fields, the context."""
    out: list[str] = []
    for block in message.get("blocks", []):
        kind = block.get("type")
        if kind == "header":
            out.append(str(block["text"]["text"]).upper())
        elif kind == "section" and "text" in block:
            out.append(_plain(block["text"]["text"]))
        elif kind == "section":
            out.append("   ".join(_plain(f["text"]).replace("\n", ": ", 1)
                                   for f in block.get("fields", [])))
        elif kind == "context":
            out += [_plain(e["text"]) for e in block.get("elements", [])]
    return out


def _plain(mrkdwn: str) -> str:
    """Slack's mrkdwn as it reads: links shown by their text, no emphasis marks."""
    text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", mrkdwn)
    return text.replace("*", "").replace("`", "")

