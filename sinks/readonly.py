"""Which statements ``radar sql`` accepts: one read-only statement, nothing else.

ClickHouse's own ``readonly`` setting is applied as well; this check gives the clear message
before the query reaches the database.
"""

from __future__ import annotations

import re

READ_ONLY_VERBS: tuple[str, ...] = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")

# strings and comments, scanned left to right so a quote in a comment (or "--" in a string)
# is read as what it is
_TOKENS = re.compile(
    r"(?P<s>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`)"
    r"|(?P<c>--[^\n]*|#[^\n]*|/\*.*?\*/)",
    re.S,
)
_VERB = re.compile(r"\(*\s*([A-Za-z]+)")


class NotReadOnly(ValueError):
    pass


def check_read_only(sql: str) -> str:
    """Return the statement (trailing ``;`` and comments removed) or raise :class:`NotReadOnly`."""
    # comments blanked to spaces of the same length, so positions still match ``sql``
    masked = _TOKENS.sub(lambda m: m.group(0) if m.group("s") else " " * len(m.group(0)), sql)
    end = len(masked.rstrip(" \t\r\n;"))
    statement = sql[:end]
    bare = _TOKENS.sub(lambda m: "''" if m.group("s") else " ", masked[:end]).strip()
    if not bare:
        raise NotReadOnly("empty query")
    if ";" in bare:
        raise NotReadOnly("only one statement per query")
    match = _VERB.match(bare)
    verb = match.group(1).upper() if match else bare.split(None, 1)[0]
    if verb not in READ_ONLY_VERBS:
        raise NotReadOnly(
            f"{verb} is not allowed: radar sql runs read-only queries "
            f"({', '.join(v for v in READ_ONLY_VERBS if v != 'DESC')}); "
            "use `radar db init` to change the schema"
        )
    return statement.strip()
