"""Archives (zip-slip, truncation, atomicity) and downloads (https only, resume, checksum, dead links)."""
from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile

import pytest

from kdas_lab.data.archive import safe_extract, sha256_file
from kdas_lab.data.download import DownloadError, download
from kdas_lab.data.io import DataError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_safe_extract_ok(tmp_path):
    z = _zip(tmp_path / "a.zip", {"set/images/1.png": b"x", "set/masks/1.png": b"y"})
    out = safe_extract(z, tmp_path / "out")
    assert (out / "set" / "images" / "1.png").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "out"]


@pytest.mark.parametrize("bad", ["../evil.txt", "/abs/evil.txt", "set/../../evil.txt"])
def test_zip_slip_rejected_and_nothing_left(tmp_path, bad):
    z = _zip(tmp_path / "a.zip", {"ok.txt": b"1", bad: b"2"})
    with pytest.raises(DataError, match="unsafe entry"):
        safe_extract(z, tmp_path / "sub" / "out")
    assert list((tmp_path / "sub").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_truncated_zip_fails_clearly_and_leaves_nothing(tmp_path, cut):
    good = _zip(tmp_path / "good.zip", {f"f{i}.bin": PAYLOAD for i in range(3)})
    data = good.read_bytes()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(DataError, match="truncated or corrupt"):
        safe_extract(bad, tmp_path / "sub" / "out")
    assert list((tmp_path / "sub").iterdir()) == []


def test_corrupt_member_crc_fails(tmp_path):
    good = _zip(tmp_path / "good.zip", {"f.bin": PAYLOAD})
    data = bytearray(good.read_bytes())
    data[100] ^= 0xFF  # inside the stored member data
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="truncated or corrupt"):
        safe_extract(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


class _Server:
    """Loopback HTTP server with Range support; ``cut_first`` closes the first full response early."""

    def __init__(self, payload: bytes, cut_first: int | None = None, status: int = 200):
        self.payload, self.cut_first, self.status, self.ranges = payload, cut_first, status, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if outer.status != 200:
                    self.send_error(outer.status)
                    return
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = outer.payload[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_first is not None:
                    body, outer.cut_first = body[: outer.cut_first], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.zip"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_factory():
    servers = []

    def make(*args, **kwargs):
        servers.append(_Server(*args, **kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_download_verifies_sha256(tmp_path, server_factory):
    srv = server_factory(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    out = download(srv.url, tmp_path / "f.zip", sha256=sha, progress=False, chunk_size=4096)
    assert sha256_file(out) == sha and not (tmp_path / "f.zip.part").exists()


def test_checksum_mismatch_deletes_part_and_fails(tmp_path, server_factory):
    srv = server_factory(PAYLOAD)
    with pytest.raises(DataError, match="checksum mismatch"):
        download(srv.url, tmp_path / "f.zip", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_with_range(tmp_path, server_factory):
    srv = server_factory(PAYLOAD, cut_first=30_000)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(DownloadError, match="interrupted"):
        download(srv.url, tmp_path / "f.zip", sha256=sha, progress=False, chunk_size=4096)
    part = tmp_path / "f.zip.part"
    assert part.stat().st_size == 30_000 and not (tmp_path / "f.zip").exists()
    out = download(srv.url, tmp_path / "f.zip", sha256=sha, progress=False, chunk_size=4096)
    assert srv.ranges == [None, "bytes=30000-"]
    assert out.read_bytes() == PAYLOAD and not part.exists()


def test_dead_link_names_landing_page_and_flag(tmp_path, server_factory):
    srv = server_factory(PAYLOAD, status=404)
    with pytest.raises(DownloadError, match=r"HTTP 404.*https://datasets.simula.no/kvasir-seg/.*--kvasir PATH"):
        download(srv.url, tmp_path / "f.zip", landing_page="https://datasets.simula.no/kvasir-seg/",
                 flag="kvasir", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["http://example.com/a.zip", "ftp://127.0.0.1/a.zip", "file:///etc/passwd"])
def test_only_https_or_loopback_http(tmp_path, url):
    with pytest.raises(DataError, match="only https"):
        download(url, tmp_path / "f.zip", progress=False)
