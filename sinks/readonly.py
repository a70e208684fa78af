"""Which statements ``radar sql`` accepts: one read-only statement, nothing else.

Three layers judge an analyst query, each stopping what the one before cannot see:

1. ``check_read_only`` (here, pure text): exactly one statement, whose verb reads (SELECT,
   WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS), and no ``INTO OUTFILE``; gives the clear message.
2. ``judge_ast`` (here, pure, over ClickHouse's own parse: ``EXPLAIN AST``): the kind of
   statement, ``INTO OUTFILE`` in any form, table functions that reach files, URLs, processes
   or other servers, and the ``file()`` function (embedded ClickHouse reads any file with it).
3. ClickHouse's ``readonly = 1`` and the query bounds (``sinks.analyst``): no write, no setting
   changed from the query (so no bound lifted), and most table functions refused again.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

READ_ONLY_VERBS: tuple[str, ...] = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")

# strings and comments, scanned left to right so a quote in a comment (or "--" in a string)
# is read as what it is
_TOKENS = re.compile(
    r"(?P<s>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`)"
    r"|(?P<c>--[^\n]*|#[^\n]*|/\*.*?\*/)",
    re.S,
)
_VERB = re.compile(r"\(*\s*([A-Za-z]+)")


_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.I)


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
    if _OUTFILE.search(bare):
        raise NotReadOnly("INTO OUTFILE is not allowed: radar sql returns rows, it writes no file")
    return statement.strip()


# The kinds of statement (the root of ClickHouse's AST) an analyst may run: reads of data and
# of the schema. SHOW USERS / GRANTS / ACCESS / CREATE USER and the like are not among them.
READ_STATEMENT_KINDS: frozenset[str] = frozenset({
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "ShowColumns",
    "ShowIndexes", "ShowCreateTableQuery", "ShowCreateViewQuery", "ShowCreateDatabaseQuery",
    "ShowCreateDictionaryQuery", "ShowFunctions", "ShowEngineQuery", "ShowProcesslistQuery",
    "DescribeQuery", "ExistsTableQuery", "ExistsDatabaseQuery", "ExistsViewQuery",
    "ExistsDictionaryQuery", "Explain",
})
# Table functions that only generate rows or read other queries: every other one reaches
# outside the database (file, url, s3, remote, mysql, python, filesystem, executable, ...)
SAFE_TABLE_FUNCTIONS: frozenset[str] = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries",
    "primes", "values", "view", "null", "generaterandom",
})
# Ordinary functions that read the machine: file() reads any file in embedded ClickHouse
# (a server confines it to user_files_path); the model functions load files by path
DENIED_FUNCTIONS: frozenset[str] = frozenset({"file", "catboostevaluate", "modelevaluate"})

_AST_LINE = re.compile(r"^( *)(\S+)(?: (\S+))?")


def judge_ast(ast: Sequence[str], table_functions: Collection[str],
              scalar_functions: Collection[str] = ()) -> None:
    """Judge a statement by ClickHouse's own parse of it (the lines of ``EXPLAIN AST``).

    ``table_functions``: every table function this ClickHouse knows (system.table_functions);
    ``scalar_functions``: those of them that are also ordinary functions (e.g. ``format``),
    refused only where they stand for a table. Raises :class:`NotReadOnly`.
    """
    tables = {name.lower() for name in table_functions} - SAFE_TABLE_FUNCTIONS
    also_scalar = {name.lower() for name in scalar_functions}
    nodes: list[tuple[int, str, str]] = []
    for line in ast:
        match = _AST_LINE.match(line)
        if match is None or (nodes and len(match.group(1)) > nodes[-1][0] + 1):
            raise NotReadOnly("the query could not be judged (unexpected parse); rephrase it")
        nodes.append((len(match.group(1)), match.group(2), match.group(3) or ""))
    roots = [n for n in nodes if n[0] == 0]
    if len(roots) != 1 or nodes[0][0] != 0:
        # a line break inside a quoted identifier also lands here: it reads like a second root
        raise NotReadOnly("the query could not be judged as one statement; rephrase it")
    if nodes[0][1] not in READ_STATEMENT_KINDS:
        kind = ast[0].split(" (children")[0].strip()
        raise NotReadOnly(f"{kind} is not allowed: radar sql reads data and the schema only")
    parents: list[str] = []
    for depth, name, arg in nodes:
        del parents[depth:]
        # the clauses of the statement itself: a literal there is INTO OUTFILE's file name
        # (COMPRESSION and LEVEL follow it); FORMAT is an identifier, SETTINGS a Set
        if depth == 1 and name == "Literal":
            raise NotReadOnly("INTO OUTFILE is not allowed: radar sql returns rows, it writes "
                              "no file")
        if name == "Function":
            function = arg.lower()
            in_from = bool(parents) and parents[-1] == "TableExpression"
            if function in DENIED_FUNCTIONS or function in tables and (
                    in_from or function not in also_scalar):
                raise NotReadOnly(f"{arg}() is not allowed: radar sql reads the radar tables, "
                                  "not files, URLs or other servers")
        parents.append(name)
