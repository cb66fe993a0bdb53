"""`kappa replay run | compare | promote | versions | drop`: argument parsing and printing only; the
work is done by the other modules of kappa.replay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kappa.config import Config
from kappa.replay import ReplayError, compare, offsets, promote, runner, versions
from kappa.replay.versions import LIVE


def _cmd_run(args: argparse.Namespace, config: Config) -> int:
    versions.check_version(args.version)
    bad = [item for item in args.set if "=" not in item]
    if bad:
        raise ReplayError(f"--set wants NAME=VALUE, got {bad[0]!r}")
    topic = args.topic or config.kafka.telemetry_topic
    rng = offsets.capture_range(config, topic, args.from_spec, args.to_spec)
    extra = dict(item.split("=", 1) for item in args.set)
    runner.run_replay(config, args.job, args.version, rng, cluster=args.cluster or args.follow, follow=args.follow,
                      extra=extra, parallelism=args.parallelism, archive=not args.no_archive,
                      max_restarts=args.max_restarts)
    return 0


def _cmd_compare(args: argparse.Namespace, config: Config) -> int:
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        diffs = compare.compare_versions(conn, args.job, args.left, args.right)
    print(compare.format_diffs(args.left, args.right, diffs))
    if args.csv:
        compare.write_csv(Path(args.csv), args.left, args.right, diffs)
        print(f"written {args.csv}", file=sys.stderr)
    return 0


def _cmd_promote(args: argparse.Namespace, config: Config) -> int:
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        previous = next((v.version for v in versions.versions(conn, args.job) if v.promoted), LIVE)
        switched = promote.promote(conn, args.job, args.version)
        chosen = None if args.version == LIVE else versions.get_version(conn, args.job, args.version)
    print(f"{', '.join(switched) or 'no reader views'} now read "
          f"{'the live tables' if chosen is None else args.version}")
    if chosen is not None and chosen.job_id is not None:
        state = promote.cluster_job_state(config, chosen.job_id)
        if state != "RUNNING":
            print(f"WARNING: {args.version}'s Flink job {chosen.job_id} is {state}: its tables do not advance",
                  file=sys.stderr)
        print(f"{args.version}'s job {chosen.job_id} is already live ({state}): no follow-on job to start; "
              + promote.stop_hint(config, args.job, previous), file=sys.stderr)
    elif chosen is not None:
        print(f"the {args.version} tables end at the replay's end offsets {offsets.format_offsets(chosen.end)}; "
              "to keep them current, start its live job there (with the SQL it was replayed with), "
              "then stop the old live job:\n  " + promote.follow_on_command(config, chosen), file=sys.stderr)
    return 0


def _cmd_versions(args: argparse.Namespace, config: Config) -> int:
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        found = versions.versions(conn, args.job)
    if not found:
        print("no replay versions (readers see the live tables)")
        return 0
    for v in found:
        promoted = "*" if v.promoted else " "
        span = f"{v.from_spec}..{v.to_spec or 'end at start'}" + (" and on (--follow)" if v.follows else "")
        live = f" job {v.job_id} {promote.cluster_job_state(config, v.job_id)}" if v.job_id else ""
        print(f"{promoted} {v.job:<10} {v.version:<12} {v.state:<9} {v.topic} "
              f"{offsets.format_offsets(v.start)} -> {offsets.format_offsets(v.end)} ({span}) "
              f"created {v.created_at:%Y-%m-%d %H:%M:%S}{live}")
        if v.state == "failed" and v.error:
            print(f"    failed: {v.error.splitlines()[0][:300]}")
    if not any(v.promoted for v in found):
        print("(no version promoted: readers see the live tables)")
    return 0


def _cmd_drop(args: argparse.Namespace, config: Config) -> int:
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        gone = promote.drop(config, conn, args.job, args.version, cancel_job=args.cancel_job)
    print("dropped: " + (", ".join(gone) or "nothing but the record"))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="reprocess the log into versioned outputs, compare, promote")
    commands = parser.add_subparsers(dest="replay_command", metavar="SUBCOMMAND", required=True)

    run = commands.add_parser("run", help="run JOB over the topic's offsets now into its outputs suffixed _VERSION")
    run.add_argument("job")
    run.add_argument("--as", dest="version", required=True, metavar="VERSION", help="e.g. v2 -> tables *_v2")
    run.add_argument("--from", dest="from_spec", default="earliest", metavar="earliest|ISO-TIMESTAMP")
    run.add_argument("--to", dest="to_spec", metavar="ISO-TIMESTAMP", help="default: the end offsets at start")
    run.add_argument("--topic", help="input topic (default: kafka.telemetry_topic)")
    run.add_argument("--cluster", action="store_true", help="run on the standalone cluster (default: local)")
    run.add_argument("--follow", action="store_true",
                     help="unbounded from the same start (implies --cluster): return once caught up with the end "
                          "offsets at start, leaving the job running as the version's live job")
    run.add_argument("--parallelism", type=int)
    run.add_argument("--max-restarts", type=int, metavar="N",
                     help="give up (cancel the job, mark the version failed) once the job restarted N times "
                          "(default: job.restart_max_failures)")
    run.add_argument("--no-archive", action="store_true",
                     help="do not archive the version's archived topics (the aggregate job's aggregates) as "
                          "Parquet under <prefix>_<version>/ (bounded replays archive them by default)")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="SQL placeholder value for this version, e.g. watermark_delay_s=30 (repeatable)")
    run.set_defaults(func=_cmd_run)

    comparing = commands.add_parser("compare", help="compare two versions' outputs ('live' = no suffix)")
    comparing.add_argument("job")
    comparing.add_argument("left", metavar="V1")
    comparing.add_argument("right", metavar="V2")
    comparing.add_argument("--csv", metavar="PATH", help="also write the comparison as CSV")
    comparing.set_defaults(func=_cmd_compare)

    prom = commands.add_parser("promote", help="switch the job's reader views to VERSION ('live' switches back)")
    prom.add_argument("job")
    prom.add_argument("version")
    prom.set_defaults(func=_cmd_promote)

    listing = commands.add_parser("versions", help="list replay versions")
    listing.add_argument("job", nargs="?")
    listing.set_defaults(func=_cmd_versions)

    dropping = commands.add_parser("drop", help="drop a version's tables, output topics and archives")
    dropping.add_argument("job")
    dropping.add_argument("version")
    dropping.add_argument("--cancel-job", action="store_true",
                          help="cancel the version's running --follow job first (refused otherwise)")
    dropping.set_defaults(func=_cmd_drop)
