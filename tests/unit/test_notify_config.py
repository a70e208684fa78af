"""radar notify's configuration (SPEC section 10): the example documents every key and loads;
a bad file is refused at start-up with each problem named by its key; env: values come from
the environment handed in."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from schemas.notify import (
    Destination,
    Digest,
    NotifyConfig,
    NotifyConfigError,
    Route,
    load_notify_config,
)

EXAMPLE = (Path(__file__).resolve().parents[2] / "notify.example.toml").read_text()
ENV = {"RADAR_SLACK_URL": "https://hooks.slack.com/services/T0/B0/x",
       "RADAR_HOOK_SECRET": "0123456789abcdef-secret"}


def test_the_example_loads_and_shows_every_key_of_the_contract() -> None:
    config = load_notify_config(EXAMPLE, ENV)
    assert [d.name for d in config.destination] == ["cs-team", "crm-hook"]
    assert config.destination[0].url == ENV["RADAR_SLACK_URL"]
    assert config.destination[1].secret == ENV["RADAR_HOOK_SECRET"]
    assert config.route[1].types is None and config.route[0].min_severity == "high"
    assert config.max_age == timedelta(hours=24) and config.give_up_after == timedelta(hours=1)
    assert config.digest[0].timezone == "Europe/Paris"
    shown = set(re.findall(r"^(\w+) = ", EXAMPLE, re.MULTILINE))
    tables = set(re.findall(r"^\[\[(\w+)\]\]$", EXAMPLE, re.MULTILINE))
    assert tables == {"destination", "route", "digest"}
    assert set(NotifyConfig.model_fields) - tables <= shown
    for model in (Destination, Route, Digest):
        assert set(model.model_fields) <= shown, (model.__name__, set(model.model_fields) - shown)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(NotifyConfigError) as caught:
        load_notify_config(text, ENV if env is None else env)
    return caught.value.problems


def test_every_problem_is_named_by_its_key() -> None:
    bad = '''
max_age = "soon"
[[destination]]
name = "a"
kind = "pager"
url = "ftp://x"
[[destination]]
name = "b"
kind = "slack"
url = "https://hooks.example.com/b"
secret = "0123456789abcdef0"
[[route]]
destination = "nowhere"
types = ["champion_left", "champion_sneezed"]
min_severity = "urgent"
colour = "red"
'''
    found = problems(bad)
    text = "\n".join(found)
    for where in ("max_age", "destination[0].kind", "destination[0].url", "destination[1]",
                  "route[0].types", "route[0].min_severity", "route[0].colour"):
        assert any(p.startswith(where) for p in found), (where, text)
    assert "champion_sneezed" in text and "only webhooks are signed" in text


def test_references_names_zones_and_env_values_are_checked() -> None:
    base = '[[destination]]\nname = "a"\nkind = "webhook"\nurl = "http://127.0.0.1:1/h"\n'
    assert "route[0].destination: no destination is named 'b'" in \
        problems(base + '[[route]]\ndestination = "b"\n')[0]
    assert "used twice" in problems(base + base)[0]
    zone = base + '[[digest]]\nname = "d"\ndestination = "a"\nevery = "daily"\n' \
        'timezone = "Mars/Olympus"\n'
    assert problems(zone)[0].startswith("digest[0].timezone: unknown time zone")
    assert problems(base.replace('"http://127.0.0.1:1/h"', '"env:HOOK_URL"'), env={}) == \
        ["destination[0].url: env:HOOK_URL is not set in the environment"]
    assert problems("[[destination]\n")[0].startswith("not TOML")
    assert problems("")[0].startswith("destination")  # at least one destination
    config = load_notify_config(base + '[[digest]]\nname = "d"\ndestination = "a"\n'
                                'every = "weekly"\n', {})
    assert (config.digest[0].at, config.digest[0].weekday, config.digest[0].timezone) == \
        ("08:00", "monday", "UTC")
