"""``python -m kdas_lab.exercises make-student notebooks --out notebooks/student``."""
from __future__ import annotations

import argparse

from kdas_lab.exercises.student import make_student


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdas_lab.exercises")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-student", help="write student copies (solutions blanked, outputs cleared)")
    make.add_argument("source", help="folder of solved notebooks")
    make.add_argument("--out", required=True, help="folder for the student copies")
    args = parser.parse_args(argv)
    done = make_student(args.source, args.out)
    for name, n in done.items():
        print(f"{args.out}/{name}: {n} solution region(s) blanked")
    if not done:
        print(f"no solution regions ({'### BEGIN SOLUTION'}) in {args.source}/*.ipynb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
