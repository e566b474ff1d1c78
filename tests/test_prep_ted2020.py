"""The ted2020 source: resumable, size-checked downloads from a local stand-in server, the
offline message, and files placed by hand (stand-in archives built from the toy corpus)."""
import gzip
import hashlib
import io
import json
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nmt_suite.prep.clean import ScriptConverter
from nmt_suite.prep.download import RemoteFile, ensure_files, fetch
from nmt_suite.prep.errors import PrepError
from nmt_suite.prep.sources import TED2020_FILES
from prep_toy import run_prepare, write_toy_corpus


def _tgz(members: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict:
    """The three HW5 release files, made from the toy corpus (member names as in the release)."""
    raw = write_toy_corpus(tmp_path_factory.mktemp("ted2020") / "raw", n_train=800, n_mono=200)
    read = lambda name: (raw / name).read_bytes()  # noqa: E731
    return {
        "ml2023.hw5.data.tgz": _tgz({"raw.en": read("train.en"), "raw.zh": read("train.zh")}),
        "ml2023.hw5.test.tgz": _tgz({"test.en": read("test.en"), "test.zh": read("test.zh")}),
        "ted_zh_corpus.deduped.gz": gzip.compress(read("mono.zh"), mtime=0),
        "raw": raw,
    }


class _Server:
    """A loopback HTTP server for the given files, honouring ``Range: bytes=N-``; it can
    announce more bytes than it sends (a connection cut short)."""

    def __init__(self, files: dict, truncate: int = 0):
        self.files, self.truncate, self.ranges = files, truncate, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                data = server.files.get(self.path.rsplit("/", 1)[-1])
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    server.ranges.append(self.headers["Range"])
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:len(data) - server.truncate])

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/release"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(archives):
    servers = []

    def start(truncate=0):
        servers.append(_Server({k: v for k, v in archives.items() if k != "raw"}, truncate))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/release"


def test_download_resumes_a_partial_file(archives, server, tmp_path):
    srv = server()
    name = "ml2023.hw5.data.tgz"
    data = archives[name]
    (tmp_path / f"{name}.part").write_bytes(data[:1000])
    fetch(f"{srv.url}/{name}", tmp_path / name, expected_sha256=hashlib.sha256(data).hexdigest())
    assert srv.ranges == ["bytes=1000-"]
    assert (tmp_path / name).read_bytes() == data and not (tmp_path / f"{name}.part").exists()


def test_short_download_is_not_renamed_into_place(server, tmp_path):
    srv = server(truncate=100)
    name = "ml2023.hw5.test.tgz"
    with pytest.raises(PrepError, match=r"got \d+ of \d+ bytes; run again to resume"):
        fetch(f"{srv.url}/{name}", tmp_path / name)
    assert not (tmp_path / name).exists() and (tmp_path / f"{name}.part").exists()


def test_wrong_sha256_is_refused(archives, server, tmp_path):
    srv = server()
    with pytest.raises(PrepError, match="does not match the expected"):
        ensure_files([RemoteFile("ted_zh_corpus.deduped.gz", sha256="0" * 64)], srv.url, tmp_path, log=lambda m: None)
    assert not (tmp_path / "ted_zh_corpus.deduped.gz").exists()


def test_offline_names_the_files_then_accepts_them_placed_by_hand(archives, tmp_path):
    data_dir = tmp_path / "data"
    args = ["--corpus", "ted2020", "--data-dir", data_dir, "--vocab-size", "100", "--workers", "2"]
    code, _, err = run_prepare(args + ["--mirror-url", _closed_port_url()])
    assert code == 1
    downloads = data_dir / "ted2020" / "downloads"
    for remote in TED2020_FILES:
        assert f"{downloads / remote.name}   <- http://127.0.0.1:" in err
    assert not (data_dir / "ted2020" / "manifest.json").exists()

    for remote in TED2020_FILES:  # a person copies the files there; no network needed now
        (downloads / remote.name).write_bytes(archives[remote.name])
    code, out, err = run_prepare(args)
    assert code == 0, err
    corpus = data_dir / "ted2020"
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert {n: d["sha256"] for n, d in manifest["downloads"].items()} == {
        r.name: hashlib.sha256(archives[r.name]).hexdigest() for r in TED2020_FILES}
    # no valid set in the release: a seeded 1 % of train, counted
    counts = manifest["counts"]
    assert counts["valid"]["split_from_train"] == {"ratio": 0.01, "seed": 1}
    assert counts["train"]["dropped"]["split_to_valid"] == counts["valid"]["input"] > 0
    # HW5 references are Traditional: zh converted (s2twp) in clean/, ref/ and mono alike
    raw = archives["raw"]
    test_zh = (raw / "test.zh").read_text(encoding="utf-8").split("\n")[:-1]
    assert (corpus / "ref" / "test.zh").read_text(encoding="utf-8").split("\n")[:-1] == \
        ScriptConverter("tw").convert_lines(test_zh)
    for name in ("clean/train.zh", "clean/mono.zh"):
        text = (corpus / name).read_text(encoding="utf-8")
        assert "鱼" not in text and "魚" in text
    assert (corpus / "bin-mono" / "mono.zh-en.zh.bin").is_file()
