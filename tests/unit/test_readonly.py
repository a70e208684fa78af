"""``radar sql`` accepts exactly one read-only statement (``sinks.readonly.check_read_only``)."""

from __future__ import annotations

import pytest

from sinks.readonly import NotReadOnly, check_read_only, judge_ast


@pytest.mark.parametrize(
    ("sql", "returned"),
    [
        pytest.param("SELECT 1", "SELECT 1", id="select"),
        pytest.param("select count() from events", "select count() from events",
                     id="lowercase-select"),
        pytest.param("SeLeCt 1", "SeLeCt 1", id="mixed-case"),
        pytest.param("WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT 1) SELECT * FROM x",
                     id="with"),
        pytest.param("SHOW TABLES", "SHOW TABLES", id="show"),
        pytest.param("describe events", "describe events", id="describe"),
        pytest.param("DESC events", "DESC events", id="desc"),
        pytest.param("EXPLAIN SELECT 1", "EXPLAIN SELECT 1", id="explain"),
        pytest.param("EXISTS TABLE events", "EXISTS TABLE events", id="exists"),
        pytest.param("(SELECT 1)", "(SELECT 1)", id="parenthesised"),
        pytest.param("  SELECT 1;  ", "SELECT 1", id="trailing-semicolon"),
        pytest.param("SELECT 1;;", "SELECT 1", id="several-trailing-semicolons"),
        pytest.param("\n\tSELECT\n1\n", "SELECT\n1", id="whitespace-and-newlines"),
        pytest.param("-- how many?\nSELECT 1", "-- how many?\nSELECT 1",
                     id="leading-line-comment"),
        pytest.param("/* block\n comment */ SELECT 1", "/* block\n comment */ SELECT 1",
                     id="leading-block-comment"),
        pytest.param("# hash comment\nshow tables", "# hash comment\nshow tables",
                     id="leading-hash-comment"),
    ],
)
def test_read_only_statements_are_accepted(sql: str, returned: str) -> None:
    assert check_read_only(sql) == returned


@pytest.mark.parametrize(
    ("sql", "verb"),
    [
        pytest.param("INSERT INTO events VALUES (1)", "INSERT", id="insert"),
        pytest.param("ALTER TABLE events DELETE WHERE 1", "ALTER", id="alter"),
        pytest.param("drop table events", "DROP", id="drop-lowercase"),
        pytest.param("CREATE TABLE t (x UInt8) ENGINE = Memory", "CREATE", id="create"),
        pytest.param("TRUNCATE TABLE events", "TRUNCATE", id="truncate"),
        pytest.param("OPTIMIZE TABLE events FINAL", "OPTIMIZE", id="optimize"),
        pytest.param("SYSTEM DROP DNS CACHE", "SYSTEM", id="system"),
        pytest.param("SET readonly = 0", "SET", id="set"),
        pytest.param("KILL QUERY WHERE 1", "KILL", id="kill"),
        pytest.param("-- SELECT\nDELETE FROM events WHERE 1", "DELETE",
                     id="select-only-in-a-comment"),
        pytest.param("/* SELECT */ DROP TABLE events", "DROP", id="select-in-block-comment"),
    ],
)
def test_statements_that_change_anything_are_refused_naming_the_verb(sql: str, verb: str) -> None:
    with pytest.raises(NotReadOnly, match=f"^{verb} is not allowed: radar sql runs read-only"):
        check_read_only(sql)


def test_the_refusal_lists_the_allowed_verbs_and_points_to_db_init() -> None:
    with pytest.raises(NotReadOnly) as caught:
        check_read_only("DROP TABLE events")

    message = str(caught.value)
    assert "(SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS)" in message
    assert "radar db init" in message


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1; DROP TABLE x", id="select-then-drop"),
        pytest.param("SELECT 1; SELECT 2", id="two-selects"),
        pytest.param("SELECT ';'; DROP TABLE x", id="after-a-string-with-semicolon"),
        pytest.param("SELECT 1 /* ; */; DROP TABLE x", id="after-a-comment-with-semicolon"),
        pytest.param("SELECT 'it''s'; DROP TABLE x", id="after-a-doubled-quote"),
        pytest.param("SELECT 'a\\\\'; DROP TABLE x", id="after-an-escaped-backslash"),
        pytest.param("SELECT 'unterminated; DROP TABLE x", id="unterminated-string"),
        pytest.param("SELECT 1 /* unterminated; DROP TABLE x", id="unterminated-comment"),
    ],
)
def test_more_than_one_statement_is_refused(sql: str) -> None:
    with pytest.raises(NotReadOnly, match="^only one statement per query$"):
        check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT ';' AS s", id="single-quoted"),
        pytest.param('SELECT "a;b" FROM events', id="double-quoted-identifier"),
        pytest.param("SELECT `a;b` FROM events", id="backquoted-identifier"),
        pytest.param("SELECT 'it''s; fine'", id="doubled-quote-in-string"),
        pytest.param("SELECT 'it\\'s; fine'", id="backslash-escaped-quote"),
        pytest.param("SELECT '--;' AS s", id="comment-marker-in-string"),
        pytest.param("SELECT 1 -- ; DROP TABLE x", id="line-comment"),
        pytest.param("SELECT 1 /* ; DROP TABLE x */", id="block-comment"),
        pytest.param("SELECT 1 # ; DROP TABLE x", id="hash-comment"),
        pytest.param("SELECT 1 -- it's; not a string", id="quote-inside-a-comment"),
    ],
)
def test_a_semicolon_inside_a_string_or_comment_is_not_a_second_statement(sql: str) -> None:
    assert check_read_only(sql).startswith("SELECT ")


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(";", id="only-semicolon"),
        pytest.param("-- just a comment", id="only-comment"),
        pytest.param("/* nothing */ ;", id="comment-and-semicolon"),
    ],
)
def test_an_empty_query_is_refused(sql: str) -> None:
    with pytest.raises(NotReadOnly, match="^empty query$"):
        check_read_only(sql)


def test_not_read_only_is_a_value_error() -> None:
    assert issubclass(NotReadOnly, ValueError)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM events INTO OUTFILE 'x.tsv'",
    "select 1 into\toutfile 'x' append",
    "SELECT 1 INTO /* c */ OUTFILE 'x'",
])
def test_into_outfile_is_refused_by_the_text_check(sql: str) -> None:
    with pytest.raises(NotReadOnly, match="^INTO OUTFILE is not allowed"):
        check_read_only(sql)


def test_into_outfile_inside_a_string_is_only_text() -> None:
    assert check_read_only("SELECT 'INTO OUTFILE' AS words") == "SELECT 'INTO OUTFILE' AS words"


# -------------------------------------------------------------------- judge_ast (pure)
TABLE_FUNCTIONS = ["file", "url", "s3", "numbers", "format", "values", "filesystem"]
ALSO_ORDINARY = ["file", "format"]


def ast(*lines: str) -> list[str]:
    return list(lines)


SELECT_FROM_EVENTS = ast(
    "SelectWithUnionQuery (children 2)",
    " ExpressionList (children 1)",
    "  SelectQuery (children 2)",
    "   ExpressionList (children 1)",
    "    Asterisk",
    "   TablesInSelectQuery (children 1)",
    "    TablesInSelectQueryElement (children 1)",
    "     TableExpression (children 1)",
    "      TableIdentifier events",
    " Identifier Native",
)


def test_a_plain_select_passes() -> None:
    judge_ast(SELECT_FROM_EVENTS, TABLE_FUNCTIONS, ALSO_ORDINARY)


def test_a_literal_among_the_statements_own_clauses_is_an_outfile() -> None:
    with pytest.raises(NotReadOnly, match="INTO OUTFILE"):
        judge_ast([*SELECT_FROM_EVENTS[:-1], " Literal 'out.tsv'", " Identifier Native"],
                  TABLE_FUNCTIONS, ALSO_ORDINARY)


@pytest.mark.parametrize(("function", "refused"), [
    ("url", True), ("URL", True), ("s3", True), ("file", True), ("format", True),
    ("filesystem", True), ("numbers", False), ("values", False),
])
def test_table_functions_other_than_generators_are_refused(function: str, refused: bool) -> None:
    tree = [line if "TableIdentifier" not in line else f"      Function {function} (children 1)"
            for line in SELECT_FROM_EVENTS]
    if refused:
        with pytest.raises(NotReadOnly, match=rf"^{function}\(\) is not allowed"):
            judge_ast(tree, TABLE_FUNCTIONS, ALSO_ORDINARY)
    else:
        judge_ast(tree, TABLE_FUNCTIONS, ALSO_ORDINARY)


@pytest.mark.parametrize(("function", "refused"), [("format", False), ("file", True),
                                                    ("url", True), ("lower", False)])
def test_ordinary_functions_are_refused_only_when_they_reach_outside(function: str,
                                                                    refused: bool) -> None:
    tree = [line if "Asterisk" not in line else f"    Function {function} (children 1)"
            for line in SELECT_FROM_EVENTS]
    if refused:
        with pytest.raises(NotReadOnly, match="is not allowed"):
            judge_ast(tree, TABLE_FUNCTIONS, ALSO_ORDINARY)
    else:
        judge_ast(tree, TABLE_FUNCTIONS, ALSO_ORDINARY)


@pytest.mark.parametrize("tree", [
    pytest.param(["SelectWithUnionQuery (children 1)", "ird"], id="second-root"),
    pytest.param(["SelectWithUnionQuery (children 1)", "   ExpressionList"], id="skipped-depth"),
    pytest.param([" Literal 1"], id="no-root"),
    pytest.param([], id="empty"),
])
def test_a_parse_that_is_not_one_tree_is_refused(tree: list[str]) -> None:
    with pytest.raises(NotReadOnly, match="could not be judged"):
        judge_ast(tree, TABLE_FUNCTIONS, ALSO_ORDINARY)


@pytest.mark.parametrize("root", ["ShowGrantsQuery", "SHOW USERS query", "InsertQuery",
                                  "AlterQuery", "ParallelWithQuery 2 SelectWithUnionQuery"])
def test_statements_that_are_not_reads_are_refused(root: str) -> None:
    with pytest.raises(NotReadOnly, match="is not allowed: radar sql reads data"):
        judge_ast([f"{root} (children 1)", " Identifier Native"], TABLE_FUNCTIONS)
