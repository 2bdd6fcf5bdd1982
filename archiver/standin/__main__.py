"""`python -m archiver.standin --dumps PATH...`: run the DW stand-in until SIGTERM/SIGINT.

Prints one JSON line with where it listens (`https`, `http`, `address`, `ca_cert`) and then serves.
"""

from __future__ import annotations

import argparse
import json
import sys

from archiver.standin.faults import DEFAULT_POOL, FaultPlan, FaultSpecError
from archiver.standin.revisions import RevisionPlan, RevisionSpecError
from archiver.standin.server import Standin

# The in-process stand-in's settings that this command takes with `-s`, and the option each one sets.
SETTING_OPTIONS = {"ARCHIVER_STANDIN_EPOCH": "epoch", "ARCHIVER_STANDIN_REVISIONS": "revisions"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archiver.standin", description=__doc__)
    parser.add_argument("--dumps", nargs="+", required=True, help="feed-dump files, folders or globs")
    parser.add_argument("--port", type=int, default=0, help="https port (default: ephemeral)")
    parser.add_argument("--http-port", type=int, default=0, help="plain http port (default: ephemeral)")
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--faults", default="", help="e.g. '54243544:404,1048137@api:reset,*@image:503x1'")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of ids given a scheduled fault")
    parser.add_argument("--fault-pool", default=",".join(DEFAULT_POOL), help="faults the schedule draws from")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault schedule")
    parser.add_argument("--slow-seconds", type=float, default=45.0, help="delay of the `slow` fault")
    parser.add_argument("--oversize-bytes", type=int, default=40 * 1024 * 1024, help="size of `oversized` bodies")
    parser.add_argument("--epoch", type=int, default=0, help="serve the site as of this epoch of --revisions")
    parser.add_argument("--revisions", default="", help="e.g. '54243544:edit@1,1048137:gone@1,1048137:restore@2'")
    parser.add_argument(
        "-s",
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"as for a crawl: {', '.join(SETTING_OPTIONS)} (the same as --epoch and --revisions)",
    )
    parser.add_argument("--retry-after", type=int, default=5, help="Retry-After of 503 and 429 faults")
    args = parser.parse_args(argv)
    for pair in args.set:
        name, sep, value = pair.partition("=")
        if not sep or name.strip() not in SETTING_OPTIONS:
            parser.error(f"-s {pair}: settings here are {', '.join(SETTING_OPTIONS)} (NAME=VALUE)")
        setattr(args, SETTING_OPTIONS[name.strip()], value)
    try:
        plan = FaultPlan.parse(
            args.faults,
            rate=args.fault_rate,
            pool=args.fault_pool,
            slow_seconds=args.slow_seconds,
            oversize_bytes=args.oversize_bytes,
            retry_after=args.retry_after,
        )
        revisions = RevisionPlan.parse(args.revisions, args.epoch)
    except (FaultSpecError, RevisionSpecError) as exc:
        parser.error(str(exc))

    from twisted.internet import reactor

    standin = Standin(args.dumps, faults=plan, seed=args.seed, revisions=revisions)
    if not standin.corpus.dump_ids():
        print(f"no DW articles in {args.dumps}", file=sys.stderr)
        return 2
    listening = standin.listen(reactor, https_port=args.port, http_port=args.http_port, interface=args.interface)
    info = {**listening.info(), "articles": len(standin.corpus), "dump_articles": len(standin.corpus.dump_ids())}

    def announce() -> None:
        # Only once running: the reactor's SIGTERM/SIGINT handlers are in place by then.
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()

    reactor.callWhenRunning(announce)
    reactor.addSystemEventTrigger("before", "shutdown", listening.stop)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
