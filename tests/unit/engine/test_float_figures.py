"""Figures typed float are floats, whatever their value: the engine compiled with mypyc stores a
float where the annotation says float (an int becomes 30.0), so the pure engine must give the
same, or the same signal would carry ``30`` in one build's evidence and ``30.0`` in the other's."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from processors.engagement import touch_of
from processors.rules import DEFAULT_RULES, parse_rules
from processors.state import window_points
from schemas.decode import decode_event
from schemas.events import AdImpression


def float_settings(section: BaseModel, path: str = "") -> dict[str, Any]:
    """Every setting annotated float in the rules, by its dotted key."""
    found: dict[str, Any] = {}
    for name, info in type(section).model_fields.items():
        value = getattr(section, name)
        if isinstance(value, BaseModel):
            found.update(float_settings(value, f"{path}{name}."))
        elif info.annotation is float:
            found[f"{path}{name}"] = value
    return found


def test_every_float_setting_is_a_float_by_default_and_from_a_file() -> None:
    defaults = float_settings(DEFAULT_RULES)
    assert {"weights.reply", "expansion.engagement_surge.rise_pct",
            "churn.engagement_drop.min_prior_points"} <= defaults.keys()
    assert {k: type(v) for k, v in defaults.items()} == dict.fromkeys(defaults, float)
    written = parse_rules("[expansion.engagement_surge]\nrise_pct = 30\n")
    assert type(written.expansion.engagement_surge.rise_pct) is float
    assert written == DEFAULT_RULES


def test_an_empty_window_sums_to_a_float() -> None:
    for days in ({}, {1: 2.0}, dict.fromkeys(range(100), 1.0)):
        for offset in (0, 500):  # a window with points and one far before any
            total = window_points(days, 99, 30, offset=offset)
            assert type(total) is float, (len(days), offset, total)
    assert window_points({1: 2.0}, 99, 30) == 0.0
    assert window_points({98: 2.0, 97: 1.5}, 99, 30) == 3.5


def test_the_points_of_a_touch_are_floats() -> None:
    ad = decode_event(json.dumps({
        "event_id": "e1", "type": "ad_impression", "schema_version": 1,
        "occurred_at": "2025-01-01T00:00:00Z", "account_id": "a", "stakeholder_id": "s",
        "campaign_id": "c", "creative_id": "k", "channel": "linkedin", "clicked": True,
    }).encode(), 1 << 20)
    assert isinstance(ad, AdImpression)
    touch = touch_of(ad, DEFAULT_RULES.weights)
    assert (type(touch.points), type(touch.exposure_points)) == (float, float)
    assert (touch.points, touch.exposure_points) == (5.0, 1.0)
