"""The shipped rules.toml documents the defaults: it must say exactly what the code does."""

from __future__ import annotations

from pathlib import Path

from processors.rules import DEFAULT_RULES, Rules, parse_rules

REPO = Path(__file__).resolve().parents[2]


def test_shipped_rules_file_equals_the_built_in_defaults() -> None:
    assert parse_rules((REPO / "rules.toml").read_text()) == DEFAULT_RULES


def test_shipped_rules_file_names_every_setting() -> None:
    text = (REPO / "rules.toml").read_text()

    def keys(model: type, prefix: str = "") -> list[str]:
        out = []
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            sub = info.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields"):
                out += keys(sub, f"{prefix}{name}.")
            else:
                out.append(f"{prefix}{name}")
        return out

    for key in keys(Rules):
        assert f"\n{key.rsplit('.', 1)[-1]} =" in text or text.startswith(key), key
