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


class NotReadOnly(ValueError):
    pass


def check_read_only(sql: str) -> str:
    """Return the statement (trailing ``;`` removed) or raise :class:`NotReadOnly`."""
    bare = _TOKENS.sub(lambda m: "''" if m.group("s") else " ", sql).strip().rstrip(";").strip()
    if not bare:
        raise NotReadOnly("empty query")
    if ";" in bare:
        raise NotReadOnly("only one statement per query")
    verb = bare.split(None, 1)[0].upper().lstrip("(")
    if verb not in READ_ONLY_VERBS:
        raise NotReadOnly(
            f"{verb} is not allowed: radar sql runs read-only queries "
            f"({', '.join(v for v in READ_ONLY_VERBS if v != 'DESC')}); "
            "use `radar db init` to change the schema"
        )
    return sql.strip().rstrip(";").rstrip()
