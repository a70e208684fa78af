"""Topic names of SPEC sections 2 and 5, under one configurable prefix (default ``radar``)."""

from __future__ import annotations

from dataclasses import dataclass

# event ``type`` -> input topic suffix
INPUT_SUFFIX_BY_TYPE: dict[str, str] = {
    "ad_impression": "ad-impressions",
    "outreach_reply": "outreach-replies",
    "content_interaction": "content-interactions",
    "role_change": "role-changes",
    "account_profile": "accounts",
}
OUTPUT_SUFFIXES: tuple[str, ...] = ("dead-letters", "signals", "alerts", "account-tiers",
                                    "account-state", "erasures", "notify-deliveries",
                                    "notify-snoozes")
# erasures: one record per erased subject (key = its hash), read whole by every worker;
# account-state: the latest state row per account (key = account_id), what `radar store` keeps;
# notify-deliveries: radar notify's record of each (signal, destination) (key = the
# Idempotency-Key), on the partition of the signal; notify-snoozes: `radar snooze`'s holds
COMPACTED_SUFFIXES: frozenset[str] = frozenset({"accounts", "erasures", "account-state",
                                                "notify-deliveries", "notify-snoozes"})


@dataclass(frozen=True)
class TopicNames:
    prefix: str = "radar"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def for_type(self, event_type: str) -> str | None:
        suffix = INPUT_SUFFIX_BY_TYPE.get(event_type)
        return None if suffix is None else self.name(suffix)

    @property
    def inputs(self) -> list[str]:
        return [self.name(s) for s in INPUT_SUFFIX_BY_TYPE.values()]

    @property
    def accounts(self) -> str:
        """The account_profile input topic (compacted: each account's profiles)."""
        return self.name(INPUT_SUFFIX_BY_TYPE["account_profile"])

    @property
    def dead_letters(self) -> str:
        return self.name("dead-letters")

    @property
    def signals(self) -> str:
        return self.name("signals")

    @property
    def alerts(self) -> str:
        return self.name("alerts")

    @property
    def account_tiers(self) -> str:
        return self.name("account-tiers")

    @property
    def account_state(self) -> str:
        return self.name("account-state")

    @property
    def erasures(self) -> str:
        return self.name("erasures")

    @property
    def notify_deliveries(self) -> str:
        return self.name("notify-deliveries")

    @property
    def notify_snoozes(self) -> str:
        return self.name("notify-snoozes")

    def all(self) -> list[str]:
        return self.inputs + [self.name(s) for s in OUTPUT_SUFFIXES]

    def is_compacted(self, topic: str) -> bool:
        return any(topic == self.name(s) for s in COMPACTED_SUFFIXES)
