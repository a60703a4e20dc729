"""The installed console command:

    conv3d-parity conformance ARGS   (python -m conformance ARGS)
    conv3d-parity bench ARGS         (python -m bench ARGS)
    conv3d-parity report DIR...      (redraw a conformance or bench report from its saved tables)
"""

from __future__ import annotations

import sys
from pathlib import Path

USAGE = "usage: conv3d-parity {conformance,bench,report} [ARGS...]   (ARGS: see --help of each)"


def _report(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: conv3d-parity report DIR [DIR...]: redraw each report from its saved tables "
              "(conformance: results.csv.gz; bench: results.csv and meta.json)")
        return 0 if argv else 2
    for name in argv:
        out = Path(name)
        if (out / "results.csv.gz").exists():
            from conformance.report import write_report as conformance_report

            print(conformance_report(out))
        elif (out / "results.csv").exists() and (out / "meta.json").exists():
            from bench.report import write_report as bench_report

            print(bench_report(out))
        else:
            print(f"error: {out} holds no conformance (results.csv.gz) or bench (results.csv, "
                  "meta.json) results", file=sys.stderr)
            return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "conformance":
        from conformance.__main__ import main as conformance

        return conformance(rest)
    if command == "bench":
        from bench.__main__ import main as bench

        return bench(rest)
    if command == "report":
        return _report(rest)
    print(f"error: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
