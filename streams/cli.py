"""The ``radar`` command: one entry point for the broker, the worker, the store, publishing and
queries."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from streams.settings import Settings, SettingsError, load_settings


def _kafka(settings: Settings, args: argparse.Namespace) -> int:
    from streams import kafka_local

    if args.action == "up":
        kafka_local.up(settings)
        return 0
    if args.action == "down":
        kafka_local.down(settings)
        return 0
    return 0 if kafka_local.status(settings) else 1


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    run_worker(settings)
    return 0


def _store(settings: Settings, args: argparse.Namespace) -> int:
    from streams.store import run_store

    run_store(settings)
    return 0


def _notify(settings: Settings, args: argparse.Namespace) -> int:
    if args.digest_now:
        from streams.notify_digest import send_digest_now

        print(send_digest_now(settings, args.digest_now))
        return 0
    from streams.notify_process import read_config, run_notify

    if args.check:
        config = read_config(settings)
        print(f"{settings.notify_config}: {len(config.destination)} destination(s), "
              f"{len(config.route)} route(s), {len(config.digest)} digest(s)")
        return 0
    run_notify(settings)
    return 0


def _snooze(settings: Settings, args: argparse.Namespace) -> int:
    from streams import snooze

    if args.list:
        from datetime import UTC, datetime

        print(snooze.render(snooze.read_snoozes(settings).active(datetime.now(UTC))))
        return 0
    if args.account is None:
        raise snooze.SnoozeError("name the account: radar snooze ACCOUNT_ID --days N")
    if args.clear:
        cleared = snooze.clear(settings, args.account, args.type)
        print(f"cleared {len(cleared)} snooze(s) of {args.account}")
        return 0
    if args.days is None:
        raise snooze.SnoozeError("say for how long: --days N (or --clear, --list)")
    held = snooze.snooze(settings, args.account, args.days, args.type)
    print(f"{held.account_id}: {held.type or 'every'} alert held until "
          f"{held.until.isoformat(timespec='minutes')} (recorded as snoozed, not sent)")
    return 0


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    from streams.publish import publish_file

    summary = publish_file(args.file, bootstrap=settings.kafka_bootstrap, topics=settings.topics,
                           show_progress=not args.quiet and sys.stderr.isatty())
    print(summary.render())
    return 1 if summary.failed else 0


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from tools.simulate import simulate

    summary = simulate(args.out, accounts=args.accounts, days=args.days, seed=args.seed,
                       start=args.start, bad_rate=args.bad_rate, labels=args.labels,
                       show_progress=args.progress or (not args.quiet and sys.stderr.isatty()))
    print(summary.render())
    return 0


def _sql(settings: Settings, args: argparse.Namespace) -> int:
    from streams.query import render_table, run_query

    columns, rows = run_query(settings, args.query)
    if args.format == "json":
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str))
    elif args.format == "tsv":
        print("\t".join(columns))
        for r in rows:
            print("\t".join("" if v is None else str(v) for v in r))
    else:
        print(render_table(columns, rows))
    return 0


def _db(settings: Settings, args: argparse.Namespace) -> int:
    import os

    from sinks import grants
    from sinks.clickhouse import init_schema, open_client
    from sinks.dsn import redact
    from sinks.schema import TTL_COLUMNS

    database = args.database or grants.dsn_database(settings.dsn) or "radar"
    bounds = grants.QueryBounds(settings.sql_max_seconds, settings.sql_max_rows,
                                settings.sql_max_memory_bytes)
    if args.print_grants:  # printed, not run: no database is opened
        print(grants.grants_script(database, bounds))
        return 0
    hashes: dict[str, str] = {}
    try:
        if args.create_users:
            if settings.embedded:
                raise grants.UsersError(
                    "--create-users needs a ClickHouse server: RADAR_CLICKHOUSE_DSN="
                    "http(s)://admin:...@host:8123/db (embedded ClickHouse has no users)")
            # the new users' passwords (not RADAR_* settings): hashed here, never printed
            hashes = grants.password_hashes(os.environ)
        client = open_client(settings.dsn)
        try:
            tables = init_schema(client, settings.events_ttl_days)
            if hashes:
                grants.create_users(client, database, bounds, hashes)
        finally:
            client.close()
    except grants.UsersError as exc:
        print(f"radar db: {exc}", file=sys.stderr)
        return 2
    print(f"schema ready in {redact(settings.dsn)}: {', '.join(tables)}")
    kept = " and ".join(f"{table} by {column}" for table, column in TTL_COLUMNS.items())
    print(f"retention: {kept}, {settings.events_ttl_days} days" if settings.events_ttl_days
          else "retention: none (RADAR_EVENTS_TTL_DAYS is not set)")
    if hashes:
        print(f"users ready for database {database}: {grants.WRITER} (radar store), "
              f"{grants.ANALYST} (read only, profile {grants.ANALYST_PROFILE})")
    return 0


def _erase(settings: Settings, args: argparse.Namespace) -> int:
    from processors.erasure import SubjectKind
    from sinks.erasure import render
    from streams.erasure import run_erase

    kind: SubjectKind = "stakeholder" if args.stakeholder is not None else "account"
    removed = run_erase(settings, kind, args.stakeholder or args.account)
    print(render(kind, removed))
    return 0


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from tools.evaluate import CHART_FILE, REPORT_FILE, LabelsError, render_text, run_evaluation

    if args.horizon_days < 1:
        print("radar evaluate: --horizon-days must be at least 1", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out is not None else settings.local / "reports"
    try:
        report = run_evaluation(settings, Path(args.labels), out, args.horizon_days,
                                rule_version=args.rule_version)
    except LabelsError as exc:
        print(f"radar evaluate: {exc}", file=sys.stderr)
        return 2
    print(render_text(report))
    print(f"\nreport: {out / REPORT_FILE}\nchart:  {out / CHART_FILE}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from tools.demo import DemoWorld, run_demo

    world = DemoWorld(accounts=args.accounts, days=args.days, seed=args.seed)
    return run_demo(settings, world, sample=args.sample)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radar",
        description="Account Radar: real-time churn and expansion signals for B2B accounts.",
        epilog="Configuration comes from RADAR_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    kafka = sub.add_parser("kafka", help="the local single-node Kafka broker")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.set_defaults(run=_kafka)

    worker = sub.add_parser("worker", help="run the signal engine (Kafka in, Kafka out, "
                            "/metrics); several share the partitions")
    worker.set_defaults(run=_worker)

    store = sub.add_parser("store", help="write ClickHouse from the topics (/metrics; with "
                           "embedded ClickHouse also radar sql and radar erase)")
    store.set_defaults(run=_store)

    notify = sub.add_parser("notify", help="deliver alerts to Slack and webhooks "
                            "(RADAR_NOTIFY_CONFIG; notify.example.toml documents it)")
    notify.add_argument("--digest-now", metavar="NAME", default=None,
                        help="send the [[digest]] NAME at once (its period ending now) and exit")
    notify.add_argument("--check", action="store_true",
                        help="judge the configuration and exit")
    notify.set_defaults(run=_notify)

    from schemas.notify import SIGNAL_TYPES

    snooze = sub.add_parser("snooze", help="hold an account's alerts for N days (recorded as "
                            "snoozed, not sent); --list, --clear")
    snooze.add_argument("account", nargs="?", metavar="ACCOUNT_ID")
    snooze.add_argument("--days", type=float, default=None, metavar="N")
    snooze.add_argument("--type", default=None, choices=sorted(SIGNAL_TYPES), metavar="TYPE",
                        help="only this signal type (default: every type)")
    action = snooze.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="the snoozes in force")
    action.add_argument("--clear", action="store_true",
                        help="remove the account's snoozes (of --type only, when given)")
    snooze.set_defaults(run=_snooze)

    publish = sub.add_parser("publish", help="publish a JSONL file (or - for stdin) to the topics")
    publish.add_argument("file", help="path to a .jsonl file, or - for standard input")
    publish.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    publish.set_defaults(run=_publish)

    from tools.simulate import iso_date, positive_int, rate

    simulate = sub.add_parser("simulate", help="write a seeded synthetic ABM world (events + labels)")
    simulate.add_argument("--accounts", type=positive_int, default=200, metavar="N",
                          help="accounts in the world (default 200)")
    simulate.add_argument("--days", type=positive_int, default=365, metavar="D",
                          help="days simulated (default 365)")
    simulate.add_argument("--seed", type=int, default=7, metavar="S", help="random seed (default 7)")
    simulate.add_argument("--out", required=True, metavar="FILE.jsonl", help="events file to write")
    simulate.add_argument("--labels", default=None, metavar="FILE",
                          help="ground-truth labels file (default: <out stem>.labels.jsonl next to --out)")
    simulate.add_argument("--bad-rate", type=rate, default=0.0, metavar="R",
                          help="fraction of lines replaced by malformed ones (default 0)")
    simulate.add_argument("--start", type=iso_date, default=iso_date("2025-01-01"),
                          metavar="YYYY-MM-DD", help="first simulated day (default 2025-01-01)")
    progress = simulate.add_mutually_exclusive_group()
    progress.add_argument("--progress", action="store_true",
                          help="show the progress bar even when stderr is not a terminal")
    progress.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(run=_simulate)

    sql = sub.add_parser("sql", help="run a read-only query (works while the store runs)")
    sql.add_argument("query", help='e.g. "SELECT type, count() FROM events GROUP BY type"')
    sql.add_argument("--format", choices=["table", "tsv", "json"], default="table")
    sql.set_defaults(run=_sql)

    db = sub.add_parser("db", help="ClickHouse schema, retention and users")
    db.add_argument("action", choices=["init"], help="create or upgrade the schema and set the "
                    "retention of RADAR_EVENTS_TTL_DAYS (idempotent)")
    users = db.add_mutually_exclusive_group()
    users.add_argument("--print-grants", action="store_true",
                       help="print (do not run) the SQL creating the writer and analyst users of "
                       "a ClickHouse server, with placeholders for the password hashes")
    users.add_argument("--create-users", action="store_true",
                       help="also create those users (a server DSN of an administrator; the "
                       "passwords from CLICKHOUSE_WRITER_PASSWORD and CLICKHOUSE_ANALYST_PASSWORD)")
    db.add_argument("--database", default=None, help="the database the users get (default: the "
                    "one RADAR_CLICKHOUSE_DSN names; radar for embedded ClickHouse)")
    db.set_defaults(run=_db)

    erase = sub.add_parser("erase", help="remove a person or an account everywhere (works while "
                           "the pipeline runs)")
    subject = erase.add_mutually_exclusive_group(required=True)
    subject.add_argument("--stakeholder", metavar="ID", help="the stakeholder_id of a person")
    subject.add_argument("--account", metavar="ID", help="an account_id")
    erase.set_defaults(run=_erase)

    evaluate = sub.add_parser("evaluate", help="precision, recall and lead time of the stored "
                              "signals against the labels of `radar simulate`")
    evaluate.add_argument("--labels", required=True, help="the labels .jsonl file")
    evaluate.add_argument("--out", default=None,
                          help="report directory (default: .local/reports)")
    evaluate.add_argument("--horizon-days", type=int, default=180,
                          help="how long after a signal its outcome still counts (default 180)")
    evaluate.add_argument("--rule-version", default=None,
                          help="only signals of this rule version (default: all stored)")
    evaluate.set_defaults(run=_evaluate)

    demo = sub.add_parser("demo", help="the main job end to end on the embedded defaults")
    demo.add_argument("--accounts", type=positive_int, default=200, help="accounts to simulate (200)")
    demo.add_argument("--days", type=positive_int, default=365, help="days of history (365)")
    demo.add_argument("--seed", type=int, default=7, help="the world's seed (7)")
    demo.add_argument("--sample", default=None, metavar="FILE.jsonl",
                      help="stream this events file instead of a simulated world")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from processors.rules import RulesError
    from schemas.notify import NotifyConfigError
    from sinks.clickhouse import DatabaseUnavailable
    from sinks.readonly import NotReadOnly
    from streams.erasure import ErasureError
    from streams.kafka_local import LocalKafkaError
    from streams.notify_kafka import NotifyKafkaError
    from streams.publish import PublishError
    from streams.query import QueryError
    from streams.redaction import Redactor, install, secrets_of
    from streams.snooze import SnoozeError
    from tools.demo import DemoError

    args = build_parser().parse_args(argv)
    redact = Redactor([])
    try:
        settings = load_settings()
        redact = Redactor(secrets_of(settings))
        install(redact)  # logs and tracebacks of this process go out without the secrets
        code = int(args.run(settings, args))
    except (SettingsError, LocalKafkaError, DatabaseUnavailable, QueryError, NotReadOnly,
            DemoError, RulesError, PublishError, ErasureError, FileNotFoundError,
            NotifyConfigError, NotifyKafkaError, SnoozeError) as exc:
        print(redact(f"radar {args.command}: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
