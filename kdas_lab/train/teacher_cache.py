"""Teacher-output cache: the frozen teacher's P1/P2 computed once per (image, view, scale), reused.

Exact when the input pipeline is a fixed function of (image, view): augmentation off, or
``augment_mode="dihedral"`` (:mod:`kdas_lab.data.views`), and the loss reads only the teacher's
prediction maps (``loss.teacher_fields`` within ``("p1", "p2")``: kdas, kdas-official, kd, dist,
cwd without features). Storage: per training scale ``<name>.npy`` float16 ``(N, V, 2, s, s)``
(memory-mapped; index 2 = p1, p2; its space reserved before it is mapped) and ``<name>.json`` (written
last: a cache without it is incomplete) holding a crc32 per (image, view) block: a sample of images is
checked at load (a damaged file is named and rebuilt) and every block the first time it is read (a
damaged block mid-run is an error naming the file). Temp files a killed build left are removed at
load. ``<name>`` ends in a sha256 over the data key (folder, stems, file sizes and mtimes),
the base and training sizes, the views, the autocast dtype and the sha256 of the teacher's
state_dict: another teacher, other data or another size gives another file, never a stale reuse.
The trainer caches every image of the training folder (not only its split), so all seeds, arms and
labelled fractions of an ablation share one cache in ``<data_dir>/.kdas_cache/teacher/`` (or
``cfg.teacher_cache_dir``); parallel runs take a file lock, so one builds and the others wait.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from kdas_lab.atomic import atomic_path, clean_stale, write_text_atomic
from kdas_lab.data import PolypDataset
from kdas_lab.data.cache import cache_folder, cache_key
from kdas_lab.data.views import N_VIEWS, apply_view
from kdas_lab.store.fingerprint import state_dict_sha256
from kdas_lab.train import precision
from kdas_lab.train.cache_store import allocate_npy, bad_blocks, block_crcs, sample_rows

FORMAT = 2  # 2: crc32 per block
CACHED_FIELDS = ("p1", "p2")


class CachedTeacherOutput(NamedTuple):
    p1: torch.Tensor  # (B, 1, s, s) float32 logits
    p2: torch.Tensor  # (B, 1, s, s) float32 logits


def unavailable_reason(cfg, loss: torch.nn.Module, distilling: bool, distributed: bool = False) -> str | None:
    """Why the cache cannot serve this run (None: it can)."""
    if not distilling:
        return "no loss term reads the teacher"
    if cfg.augment and cfg.augment_mode != "dihedral":
        return (f"augment_mode={cfg.augment_mode!r} draws continuous random views "
                "(use augment_mode='dihedral' or augment=False)")
    fields = getattr(loss, "teacher_fields", None)
    if fields is None or not set(fields) <= set(CACHED_FIELDS):
        what = "unknown teacher outputs" if fields is None else ", ".join(f for f in fields if f not in CACHED_FIELDS)
        return f"loss {type(loss).__name__} reads {what}, not only the prediction maps p1/p2"
    if distributed:
        return "not supported under torchrun (DDP) yet"
    return None


class TeacherCache:
    """Memory-mapped teacher maps per training size; :meth:`lookup` gives a batch's outputs."""

    def __init__(self, arrays: dict[int, np.ndarray], stems: list[str], paths: list[Path], n_views: int,
                 crcs: dict[int, np.ndarray] | None = None):
        self.arrays, self.paths, self.n_views = arrays, paths, n_views
        self.index = {s: i for i, s in enumerate(stems)}
        self.crcs = crcs or {}  # size -> (N, V) crc32; blocks are checked once, at their first read
        self.checked = {s: np.zeros(c.shape, bool) for s, c in self.crcs.items()}
        self.files = dict(zip(arrays, paths))

    def lookup(self, stems: list[str], views: torch.Tensor | None, size: int,
               device: torch.device) -> CachedTeacherOutput:
        """Outputs for samples ``stems`` shown as ``views`` (int ``(B,)``; None = view 0) at ``size``."""
        missing = [s for s in stems if s not in self.index]
        if missing:
            raise KeyError(f"teacher cache {self.paths[0]} holds no entry for {missing[:5]}")
        rows = np.array([self.index[s] for s in stems])  # (B,)
        cols = np.zeros_like(rows) if views is None else views.cpu().numpy()  # (B,)
        block = np.ascontiguousarray(self.arrays[size][rows, cols])  # (B, 2, s, s) f16
        self._verify(size, rows, cols, block, stems)
        maps = torch.from_numpy(block)  # (B, 2, s, s) f16
        maps = maps.to(device, non_blocking=True).float()  # (B, 2, s, s)
        return CachedTeacherOutput(maps[:, 0:1], maps[:, 1:2])

    def _verify(self, size: int, rows: np.ndarray, cols: np.ndarray, block: np.ndarray, stems: list[str]) -> None:
        """Blocks read for the first time must match their crc32 (else ``ValueError`` naming the file)."""
        if size not in self.crcs:
            return
        fresh = np.flatnonzero(~self.checked[size][rows, cols])  # (k,)
        bad = [int(fresh[i]) for i, c in enumerate(block_crcs(block[fresh]))
               if c != self.crcs[size][rows[fresh[i]], cols[fresh[i]]]]
        if bad:
            raise ValueError(f"teacher cache {self.files[size]} is damaged: the maps of "
                             f"{[stems[i] for i in bad][:5]} no longer match their checksum (zeroed or overwritten "
                             f"data); delete it and rerun to rebuild it")
        self.checked[size][rows[fresh], cols[fresh]] = True


def cache_meta(dataset, teacher_sha: str, size: int, n_views: int, amp: str, teacher_name: str) -> dict:
    data_key = cache_key(dataset.folder, dataset.size, dataset.pairs)
    return {"format": FORMAT, "data_key": data_key, "stems": list(dataset.stems), "image_size": dataset.size,
            "size": size, "views": n_views, "amp": amp, "teacher": teacher_name, "teacher_sha256": teacher_sha,
            "dtype": "float16", "shape": [len(dataset.stems), n_views, 2, size, size]}


def cache_name(meta: dict) -> str:
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    return f"{meta['data_key'].split('-')[0]}-{meta['size']}px-{meta['views']}v-{digest}"


def _open_valid(npy: Path, meta_path: Path, meta: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """``(array, crc32 (N, V))`` if both files exist, match ``meta`` and a sample of images matches its
    checksums; None if absent; warns (naming the file) when unreadable or damaged."""
    if not (npy.exists() and meta_path.exists()):
        return None
    try:
        stored = json.loads(meta_path.read_text())
        crcs = np.array(stored.pop("crc32", []), dtype=np.int64)  # (N, V)
        arr = np.load(npy, mmap_mode="r")
    except (OSError, ValueError, AttributeError) as err:
        tqdm.write(f"teacher cache {npy} is unreadable ({err}); rebuilding it")
        return None
    if (stored != meta or list(arr.shape) != meta["shape"] or arr.dtype != np.float16
            or list(crcs.shape) != meta["shape"][:2]):
        tqdm.write(f"teacher cache {npy} does not match its description ({meta_path}); rebuilding it")
        return None
    rows = np.repeat(sample_rows(len(arr)), arr.shape[1])  # (k * V,)
    cols = np.tile(np.arange(arr.shape[1]), len(rows) // arr.shape[1])  # (k * V,)
    if bad_blocks(arr, crcs, rows, cols):
        tqdm.write(f"teacher cache {npy} is damaged (data no longer matches its checksums); rebuilding it")
        return None
    return arr, crcs


@contextlib.contextmanager
def _locked(path: Path):
    """Exclusive lock so parallel runs build one cache once (no-op where fcntl is missing)."""
    try:
        import fcntl  # noqa: PLC0415 (POSIX only; the ImportError is handled)
    except ImportError:  # Windows
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@torch.no_grad()
def _build(teacher, dataset, todo: dict[int, Path], n_views: int, device, autocast, memory_format,
           batch_size: int, progress: bool) -> dict[int, np.ndarray]:
    """Teacher maps for every (image, view, size) in ``todo``, written to temp files then renamed;
    returns each size's crc32 per block ``(N, V)``."""
    n = len(dataset)
    crcs = {s: np.zeros((n, n_views), np.int64) for s in todo}
    with contextlib.ExitStack() as stack:
        tmps = {s: stack.enter_context(atomic_path(p)) for s, p in todo.items()}
        outs = {s: allocate_npy(tmps[s], (n, n_views, 2, s, s), p) for s, p in todo.items()}
        bar = tqdm(total=n * n_views * len(todo), desc="caching teacher outputs", disable=not progress,
                   leave=False, unit="img")
        for lo in range(0, n, batch_size):
            idx = list(range(lo, min(n, lo + batch_size)))
            base = torch.stack([dataset[i]["image"] for i in idx]).to(device)  # (b, 3, S, S)
            for v in range(n_views):
                viewed = apply_view(base, v)  # (b, 3, S, S)
                for s in todo:
                    x = viewed
                    if x.shape[-1] != s:
                        x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=True)  # (b, 3, s, s)
                    with autocast():
                        out = teacher(x.contiguous(memory_format=memory_format))
                    maps = torch.cat([out.p1.float(), out.p2.float()], dim=1).half()  # (b, 2, s, s)
                    if not bool(torch.isfinite(maps).all()):
                        raise ValueError(f"teacher output is not finite (or beyond float16) for one of "
                                         f"{[dataset.stems[i] for i in idx]} (view {v}, size {s})")
                    outs[s][lo:lo + len(idx), v] = block = maps.cpu().numpy()  # (b, 2, s, s)
                    crcs[s][lo:lo + len(idx), v] = block_crcs(block)
                    bar.update(len(idx))
        bar.close()
        for arr in outs.values():
            arr.flush()
        del outs
    return crcs


def load_or_build(teacher: torch.nn.Module, dataset, sizes: list[int], n_views: int, cache_dir, *,
                  device: torch.device, autocast=contextlib.nullcontext, amp: str = "fp32",
                  memory_format=torch.contiguous_format, batch_size: int = 8,
                  progress: bool = True) -> tuple[TeacherCache, bool]:
    """The cache of ``teacher`` on ``dataset`` (no augmentation) at ``sizes``; ``(cache, built)``."""
    cache_dir = cache_folder(cache_dir)
    sha = state_dict_sha256(teacher)
    name = str(getattr(teacher, "name", type(teacher).__name__))
    metas = {s: cache_meta(dataset, sha, s, n_views, amp, name) for s in sizes}
    files = {s: (cache_dir / f"{cache_name(m)}.npy", cache_dir / f"{cache_name(m)}.json") for s, m in metas.items()}
    lock = cache_dir / f"{cache_name(metas[sizes[0]])}.lock"
    with _locked(lock):
        clean_stale(cache_dir)  # temp files of a killed build
        found = {s: _open_valid(*files[s], metas[s]) for s in sizes}
        todo = {s: files[s][0] for s in sizes if found[s] is None}
        if todo:
            crcs = _build(teacher, dataset, todo, n_views, device, autocast, memory_format, batch_size, progress)
            for s in todo:
                write_text_atomic(files[s][1], json.dumps({**metas[s], "crc32": crcs[s].tolist()}))
                found[s] = np.load(files[s][0], mmap_mode="r"), crcs[s]
    arrays, crcs = {s: found[s][0] for s in sizes}, {s: found[s][1] for s in sizes}
    return TeacherCache(arrays, list(dataset.stems), [files[s][0] for s in sizes], n_views, crcs), bool(todo)


def for_run(cfg, *, teacher: torch.nn.Module, loss: torch.nn.Module, distilling: bool, dataset,
            device: torch.device, amp_dtype: torch.dtype | None, memory_format=torch.contiguous_format,
            distributed: bool = False, is_main: bool = True, progress: bool = True) -> TeacherCache | None:
    """The cache for a run with ``cfg.teacher_cache`` training on ``dataset`` (its training split), or
    None after one log line saying why the live teacher is kept."""
    reason = unavailable_reason(cfg, loss, distilling, distributed)
    say = tqdm.write if is_main else (lambda _msg: None)
    if reason is not None:
        say(f"teacher_cache: keeping the live teacher ({reason})")
        return None
    n_views = N_VIEWS if cfg.augment else 1
    folder = cfg.teacher_cache_dir or Path(cfg.data_dir) / ".kdas_cache" / "teacher"
    amp = str(amp_dtype).replace("torch.", "") if amp_dtype is not None else "fp32"

    # every image of the training folder, so each seed's train/val split (and labelled subset) shares one cache
    full = PolypDataset(dataset.folder, dataset.size)
    t0 = time.perf_counter()
    cache, built = load_or_build(teacher, full, sorted(cfg.size_passes()), n_views,
                                 folder, device=device, autocast=lambda: precision.autocast(device, amp_dtype),
                                 amp=amp, memory_format=memory_format, batch_size=cfg.batch_size,
                                 progress=progress)
    say(f"teacher_cache: {'built' if built else 'reusing'} {', '.join(str(p) for p in cache.paths)} "
        f"({len(cache.index)} images x {n_views} views, {time.perf_counter() - t0:.1f} s)")
    return cache
