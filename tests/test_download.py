"""Verified downloads against an HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading

import pytest

from brainnet.datasets import download
from brainnet.errors import BrainnetError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        if self.path == "/good.bin":
            self._send(PAYLOAD, len(PAYLOAD))
        elif self.path == "/cut.bin":  # promises the whole file, closes after half
            self._send(PAYLOAD[: len(PAYLOAD) // 2], len(PAYLOAD))
        elif self.path == "/short.bin":  # a complete transfer of a truncated file
            self._send(PAYLOAD[:1000], 1000)
        else:
            self.send_error(404)

    def _send(self, body: bytes, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture(scope="module")
def base_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error(url, dest, **kw) -> str:
    with pytest.raises(BrainnetError) as info:
        download(url, dest, progress=False, **kw)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no temporary file left either
    assert "\n" not in str(info.value)
    return str(info.value)


def test_good_file_is_verified_and_saved(base_url, tmp_path, capsys):
    dest = tmp_path / "sub" / "file.bin"
    assert download(f"{base_url}/good.bin", dest, sha256=SHA, size=len(PAYLOAD), progress=True) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]
    assert "100%" in capsys.readouterr().err  # the progress bar ran


def test_sha256_is_optional(base_url, tmp_path):
    dest = tmp_path / "file.bin"
    download(f"{base_url}/good.bin", dest, progress=False)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == SHA


def test_connection_closed_early(base_url, tmp_path):
    url = f"{base_url}/cut.bin"
    msg = _error(url, tmp_path / "f.bin", sha256=SHA)
    assert msg.startswith(f"{url}: download truncated after ")
    assert msg.endswith("bytes (connection closed early); retry the download; nothing was saved")


def test_truncated_file_detected_by_size(base_url, tmp_path):
    url, dest = f"{base_url}/short.bin", tmp_path / "f.bin"
    msg = _error(url, dest, size=len(PAYLOAD))
    assert msg == f"{url}: download truncated: got 1000 bytes, expected {len(PAYLOAD)}; retry the download; nothing was saved at {dest}"


def test_wrong_checksum(base_url, tmp_path):
    url, dest = f"{base_url}/good.bin", tmp_path / "f.bin"
    msg = _error(url, dest, sha256="0" * 64)
    assert msg == f"{url}: sha256 mismatch: got {SHA}, expected {'0' * 64}; retry the download; nothing was saved at {dest}"


def test_http_error_and_unreachable(base_url, tmp_path):
    url = f"{base_url}/missing.bin"
    assert _error(url, tmp_path / "f.bin") == f"{url}: server answered HTTP 404; check the URL or download the file by hand and pass its path"
    url = f"http://127.0.0.1:{_free_port()}/x.bin"
    assert _error(url, tmp_path / "f.bin", timeout=5) == (
        f"{url}: cannot download (ConnectionError); check the network connection, "
        "or download the file by hand and pass its path"
    )


def test_existing_verified_file_is_reused_offline(tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(PAYLOAD)
    url = f"http://127.0.0.1:{_free_port()}/x.bin"  # nothing listens: would fail if contacted
    assert download(url, dest, sha256=SHA, progress=False) == dest


def test_existing_corrupt_file_is_replaced(base_url, tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old and wrong")
    download(f"{base_url}/good.bin", dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
