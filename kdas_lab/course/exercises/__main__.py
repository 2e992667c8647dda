"""``python -m kdas_lab.course.exercises make-student notebooks --out notebooks/student``."""
from __future__ import annotations

import argparse
import sys

from kdas_lab.course.exercises.student import BEGIN, StudentError, make_student


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdas_lab.course.exercises")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-student", help="write student copies (solutions blanked, outputs cleared)")
    make.add_argument("source", help="folder of solved notebooks")
    make.add_argument("--out", required=True, help="folder for the student copies (not the source folder)")
    args = parser.parse_args(argv)
    try:
        done = make_student(args.source, args.out)
    except StudentError as exc:
        print(f"make-student: error: {exc}", file=sys.stderr)
        return 2
    for name, n in done.items():
        print(f"{args.out}/{name}: {n} solution region(s) blanked")
    if not done:
        print(f"no solution regions ({BEGIN}) in {args.source}/*.ipynb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
