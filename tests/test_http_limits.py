"""The HTTP edge over real HTTP: an upload is authenticated before its body is read and refused at the size
limit (413) whether it declares its length or is chunked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from api_data import HEADER, KEY, STAFF
from cli_runner import run_cli

from yizhan.areas import AreaInfo
from yizhan.settings import Settings

MB = 1024 * 1024
BOUNDARY = "yizhan-test-boundary"


class CountingBody:
    """A multipart upload of ``size`` bytes of file content, sent in 64 KiB pieces; ``sent`` counts the bytes the
    client handed to the connection (the server stops taking them when it stops reading)."""

    def __init__(self, size: int) -> None:
        self.head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
                     "Content-Type: text/csv\r\n\r\n").encode() + HEADER.encode() + b"\n"
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.size = size
        self.sent = 0

    @property
    def length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        piece = b"#" * (64 * 1024)
        yield self._count(self.head)
        left = self.size
        while left > 0:
            yield self._count(piece[:left])
            left -= len(piece)
        yield self._count(self.tail)

    def _count(self, data: bytes) -> bytes:
        self.sent += len(data)
        return data


def post_body(client: httpx.Client, body: CountingBody, *, declare_length: bool,
              headers: dict[str, str] | None = None) -> httpx.Response:
    """POST ``body`` to the import route, with a ``Content-Length`` or chunked."""
    head = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **(headers or {})}
    if declare_length:
        head["Content-Length"] = str(body.length)
    return client.post("/stations/import", content=iter(body), headers=head)


def limited(db_url: str, tmp_path: Path, max_upload_mb: float = 1.0) -> Settings:
    return Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data", max_upload_mb=max_upload_mb)


def test_no_key_is_refused_before_the_body_is_read(live_api: Callable[..., httpx.Client], db_url: str,
                                                    wudaokou: AreaInfo, tmp_path: Path) -> None:
    client = live_api(limited(db_url, tmp_path, max_upload_mb=1000))
    for headers in ({}, {"X-API-Key": "wrong"}):
        for declare_length in (True, False):
            body = CountingBody(300 * MB)
            r = post_body(client, body, declare_length=declare_length, headers=headers)
            assert r.status_code == 401, r.text
            assert "X-API-Key" in r.json()["detail"]
            # the server answered without taking the body: the client could hand over only what the socket
            # buffers hold, far from the 300 MB
            assert body.sent < 40 * MB, (headers, declare_length, body.sent)


def test_declared_length_over_the_limit_is_refused_unread(live_api: Callable[..., httpx.Client], db_url: str,
                                                         wudaokou: AreaInfo, tmp_path: Path) -> None:
    client = live_api(limited(db_url, tmp_path, max_upload_mb=2))
    body = CountingBody(300 * MB)
    r = post_body(client, body, declare_length=True, headers=STAFF)
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert "2 MB" in detail and "\n" not in detail
    assert body.sent < 40 * MB, body.sent


def test_chunked_body_is_cut_at_the_limit(live_api: Callable[..., httpx.Client], db_url: str,
                                          wudaokou: AreaInfo, tmp_path: Path) -> None:
    client = live_api(limited(db_url, tmp_path, max_upload_mb=2))
    body = CountingBody(300 * MB)
    r = post_body(client, body, declare_length=False, headers=STAFF)
    assert r.status_code == 413, r.text
    assert "2 MB" in r.json()["detail"]
    assert body.sent < 40 * MB, body.sent
    assert client.get("/stations").json()["total"] == 0


def test_uploads_within_the_limit_still_import(live_api: Callable[..., httpx.Client], db_url: str,
                                               wudaokou: AreaInfo, tmp_path: Path) -> None:
    client = live_api(limited(db_url, tmp_path, max_upload_mb=0.01))
    small = f"{HEADER}\nS-1,小驿站,small,116.32,40.0,,,,,,,,active\n".encode()
    for declare_length in (True, False):  # a declared length and a chunked body of the same file
        head = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **STAFF}
        content = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.csv\"\r\n"
                   "Content-Type: text/csv\r\n\r\n").encode() + small + f"\r\n--{BOUNDARY}--\r\n".encode()
        r = client.post("/stations/import", headers=head,
                        content=content if declare_length else iter([content[:50], content[50:]]))
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == 1
    # a file just over the limit, in a body whose envelope the allowance covers, is refused by its size
    over = small + b"#" * int(0.01 * MB)
    r = client.post("/stations/import", headers=STAFF, files={"file": ("s.csv", over, "text/csv")})
    assert r.status_code == 413, r.text
    assert "0.01 MB" in r.json()["detail"]


def test_serve_and_demo_refuse_a_port_out_of_range(cli_env: dict[str, str]) -> None:
    """uvicorn would listen on 70000 modulo 65536 (4464) while logging :70000."""
    for args in (("serve", "--port", "70000"), ("serve", "--port", "0"), ("demo", "--port", "70000")):
        proc = run_cli(*args, env=cli_env, check=False)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert args[-1] in lines[0] and "1–65535" in lines[0]
