"""``kdas-lab data pranet | verify | synthetic`` (also ``python data_scripts/get_data.py ...``)."""
from __future__ import annotations

import time
from pathlib import Path

from kdas_lab.cli.errors import positive_int, standalone_main


def _pranet(args) -> int:
    from kdas_lab.data.pranet import build_pranet
    from kdas_lab.data.verify import verify_pranet

    t0 = time.perf_counter()
    out = build_pranet(args.out, args.kvasir, args.clinicdb, colondb=args.colondb, etis=args.etis,
                       cvc300=args.cvc300, download_dir=args.download_dir, allow_partial=args.allow_partial,
                       overwrite=args.overwrite, workers=args.workers, progress=not args.quiet)
    print(f"built {out} in {time.perf_counter() - t0:.1f} s")
    report = verify_pranet(out)
    print(report)
    return 0 if report.ok else 1


def _verify(args) -> int:
    from kdas_lab.data.verify import verify_pranet

    report = verify_pranet(args.dir, workers=args.workers, full=args.full)
    print(report)
    return 0 if report.ok else 1


def _synthetic(args) -> int:
    from kdas_lab.data.synthetic import build_synthetic

    t0 = time.perf_counter()
    out = build_synthetic(args.out, args.train, args.test, args.size, args.seed, overwrite=args.overwrite,
                          progress=not args.quiet)
    print(f"built {out}: {args.train} train + {args.test} test frames at {args.size} px "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def add_data_commands(sub) -> None:
    """Add ``pranet``, ``verify`` and ``synthetic`` parsers to a subparsers object."""
    p = sub.add_parser("pranet", help="build the PraNet layout from the original Kvasir-SEG / CVC-ClinicDB releases",
                       description="Each SRC is an https URL, a local archive (.zip/.tar) or an extracted folder.")
    p.add_argument("--kvasir", required=True, metavar="SRC",
                   help="Kvasir-SEG (e.g. https://datasets.simula.no/downloads/kvasir-seg.zip or kvasir-seg.zip)")
    p.add_argument("--clinicdb", required=True, metavar="SRC", help="CVC-ClinicDB (Original/ + Ground Truth/)")
    p.add_argument("--colondb", metavar="SRC", help="CVC-ColonDB test set (images/ + masks/)")
    p.add_argument("--etis", metavar="SRC", help="ETIS-LaribPolypDB test set (images/ + masks/)")
    p.add_argument("--cvc300", metavar="SRC", help="CVC-300 test set (images/ + masks/)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output root (must not exist)")
    p.add_argument("--download-dir", type=Path, default=None, help="where URLs are saved (default DIR/../downloads)")
    p.add_argument("--allow-partial", action="store_true", help="build even if counts differ from the releases")
    p.add_argument("--overwrite", action="store_true", help="replace an existing DIR (atomically)")
    p.add_argument("--workers", type=positive_int, default=None, help="threads (default: CPU count, at most 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_pranet)

    v = sub.add_parser("verify", help="check counts, pairing, sizes and binary masks of a PraNet-layout folder")
    v.add_argument("dir", type=Path, metavar="DIR")
    v.add_argument("--workers", type=positive_int, default=None)
    v.add_argument("--full", action="store_true", help="decode every image and mask completely (slower)")
    v.set_defaults(func=_verify)

    s = sub.add_parser("synthetic", help="procedural polyp frames in the PraNet layout (TestDataset/Synthetic)")
    s.add_argument("--out", required=True, type=Path, metavar="DIR")
    s.add_argument("--train", type=positive_int, default=400, metavar="N")
    s.add_argument("--test", type=positive_int, default=100, metavar="N")
    s.add_argument("--size", type=positive_int, default=256, metavar="S")
    s.add_argument("--seed", type=int, default=0, metavar="K")
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_synthetic)


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="install, verify or synthesise polyp datasets")
    add_data_commands(p.add_subparsers(dest="data_command", required=True, metavar="ACTION"))


def main(argv: list[str] | None = None, prog: str = "get_data.py") -> int:
    """Stand-alone entry point used by ``data_scripts/get_data.py`` (same errors as ``kdas-lab data``)."""
    return standalone_main(prog, add_data_commands, argv, "Install, verify or synthesise polyp datasets.")
