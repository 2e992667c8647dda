"""``kdas-lab predict --checkpoint CKPT IMAGE... --out DIR [--size 352]``.

For every image (any size): the probability map as in the published test script (resize to
``--size``, predict, upsample to the image size, min-max), saved as ``<stem>_mask.png`` (x255) and
``<stem>_overlay.png`` (mask >= 0.5 drawn over the image). Files are written atomically; an
existing output file (e.g. a ground-truth ``<stem>_mask.png`` beside the frames) is refused before any
work unless ``--overwrite``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kdas_lab.cli.errors import network_size
from kdas_lab.paths import require_files

OUTPUTS = ("mask", "overlay")


def refuse_existing(out_dir: Path, stems: list[str]) -> None:
    """``FileExistsError`` naming the first output file that already exists (kdas_lab may not have written it)."""
    files = [out_dir / f"{s}_{kind}.png" for s in stems for kind in OUTPUTS]
    taken = [f for f in files if f.exists() or f.is_symlink()]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise FileExistsError(f"{taken[0]} already exists{more}: refusing to replace it (pass --overwrite)")


def predict_files(checkpoint, images: list, out_dir, size: int = 352, device=None,
                  threshold: float = 0.5, overwrite: bool = False) -> list[dict]:
    """Predict every image file; returns one record per image (paths written, foreground fraction).
    Existing outputs are refused unless ``overwrite``."""
    from kdas_lab.data.io import load_image, save_png_atomic
    from kdas_lab.evaluation.inference import predict_image
    from kdas_lab.models import load_model
    from kdas_lab.runtime import resolve_device
    from kdas_lab.viz.overlays import overlay_mask

    if size % 32:
        raise ValueError(f"--size {size}: must be a multiple of 32")
    paths = [Path(p) for p in images]
    require_files(paths, "image file(s)")
    stems = [p.stem for p in paths]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise ValueError(f"several inputs share the stem(s) {dupes}: their outputs would overwrite each other")
    out_dir = Path(out_dir)
    if not overwrite:
        refuse_existing(out_dir, stems)
    device = resolve_device(device or "auto")
    model = load_model(checkpoint, device=device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for path in paths:
        image = load_image(path)  # (H, W, 3) uint8
        prob = predict_image(model, image, size=size, device=device)  # (H, W) float in [0, 1]
        mask_png = np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)
        mask_path = save_png_atomic(mask_png, out_dir / f"{path.stem}_mask.png")
        overlay_path = save_png_atomic(overlay_mask(image, prob, threshold=threshold),
                                       out_dir / f"{path.stem}_overlay.png")
        records.append({"image": str(path), "mask": str(mask_path), "overlay": str(overlay_path),
                        "height": image.shape[0], "width": image.shape[1],
                        "foreground": float((prob >= threshold).mean())})
    return records


def _run(args) -> int:
    import pandas as pd

    records = predict_files(args.checkpoint, args.images, args.out, size=args.size, device=args.device,
                            overwrite=args.overwrite)
    print(pd.DataFrame(records)[["image", "height", "width", "foreground", "mask"]].to_string(index=False))
    return 0


def register(sub) -> None:
    p = sub.add_parser("predict", help="segment image files with a checkpoint (mask + overlay PNGs)")
    p.add_argument("--checkpoint", type=Path, required=True, help="kdas_lab checkpoint (best.pt)")
    p.add_argument("images", nargs="+", type=Path, help="image files (jpg, png, tif), any size")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--size", type=network_size, default=352, help="network input size, multiple of 32 (default 352)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | mps")
    p.add_argument("--overwrite", action="store_true", help="replace existing <stem>_mask.png / _overlay.png files")
    p.set_defaults(func=_run)
