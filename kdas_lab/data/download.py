"""Streaming, resumable, checksum-verified downloads (standard library ``urllib`` + tqdm).

- https only; plain http only for loopback hosts (local test servers).
- Bytes go to ``<dest>.part``; an interrupted download resumes with an HTTP ``Range`` request.
- The sha256 is checked before the file is renamed to ``dest``; a mismatch deletes the part file.
- A dead link fails with the landing page and the way to supply the file by hand.
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from kdas_lab.data.io import DataError, sha256_file

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
USER_AGENT = "kdas_lab-data/0.1 (+https://github.com/)"


class DownloadError(RuntimeError):
    """A download failed (dead link, interrupted transfer); the message says what to do."""


def check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise DataError(f"refusing to download {url!r}: only https URLs are allowed (http only for 127.0.0.1/localhost)")


def _manual_hint(landing_page: str | None, flag: str | None, dest: Path) -> str:
    hint = ""
    if landing_page:
        hint += f" Get the file by hand from {landing_page}"
    if flag:
        hint += f" and pass it with --{flag} PATH (a zip or an extracted folder)"
    elif landing_page:
        hint += f" and save it as {dest}"
    return hint + "." if hint else ""


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, landing_page: str | None = None,
             flag: str | None = None, progress: bool = True, chunk_size: int = 1 << 20,
             timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify ``sha256``, return ``dest``."""
    check_url(url)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if sha256 is None or sha256_file(dest) == sha256:
            return dest
        raise DataError(f"{dest} exists but its sha256 is not {sha256}: delete it and run again")
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part file is already complete
            response = None
        else:
            raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}."
                                + _manual_hint(landing_page, flag, dest)) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"download of {url} failed: {exc}." + _manual_hint(landing_page, flag, dest)) from exc

    if response is not None:
        with response:
            resumed = offset and response.status == 206
            mode = "ab" if resumed else "wb"
            start = offset if resumed else 0
            length = response.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            got = start
            try:
                with open(part, mode) as f, tqdm(total=total, initial=start, unit="B", unit_scale=True,
                                                 desc=dest.name, disable=not progress, leave=False) as bar:
                    while block := response.read(chunk_size):
                        f.write(block)
                        got += len(block)
                        bar.update(len(block))
            except (http.client.IncompleteRead, OSError) as exc:
                raise DownloadError(f"download of {url} was interrupted after {got} bytes ({exc}); "
                                    f"run the same command again to resume from {part}") from exc
            if total is not None and got != total:
                raise DownloadError(f"download of {url} was interrupted after {got} of {total} bytes; "
                                    f"run the same command again to resume from {part}")
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise DataError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; "
                            f"the partial file was deleted." + _manual_hint(landing_page, flag, dest))
    os.replace(part, dest)
    return dest
