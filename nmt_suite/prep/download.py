"""Resumable downloads: data goes to ``<name>.part`` (resumed with an HTTP Range request),
the size is checked against the server's, the sha256 against a known value where there is
one, and only a complete file is renamed to its final name.

The partial file has a fixed name, not one of :mod:`nmt_suite.files`' per-process temporary
names, because it outlives the process: the next run (or a person with the same URL) resumes
it where a cut connection left it."""
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from nmt_suite.files import sha256_file
from nmt_suite.prep.errors import PrepError

CONNECT_TIMEOUT_S = 20
_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    name: str
    sha256: str = None  # None until known; the manifest records what was received


class Unreachable(Exception):
    """The server could not be reached at all (offline, DNS, refused)."""


def _total_size(response, offset: int):
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


def fetch(url: str, dest: Path, expected_sha256: str = None) -> None:
    """Download ``url`` to ``dest`` (resuming ``dest.part``); raise Unreachable or PrepError."""
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "fairseq_ext-prepare-data"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=CONNECT_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the .part file already holds everything
            total = _total_size(err, 0)
            if total is not None and total != offset:
                raise PrepError(f"{part}: {offset} bytes on disk but {url} has {total}; delete it and retry") from None
            return _finish(part, dest, offset, expected_sha256, url)
        raise PrepError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError) as err:
        raise Unreachable(str(getattr(err, "reason", err))) from None
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range header: start over
        total = _total_size(response, offset)
        mode = "ab" if offset else "wb"
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         desc=dest.name, disable=None) as bar:
            try:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    f.write(block)
                    bar.update(len(block))
            except (socket.timeout, ConnectionError, urllib.error.URLError) as err:
                raise PrepError(f"{url}: download interrupted at {f.tell()} bytes ({err}); "
                                f"run again to resume from {part}") from None
            f.flush()
            os.fsync(f.fileno())
            received = f.tell()
    if total is not None and received != total:
        raise PrepError(f"{url}: got {received} of {total} bytes; run again to resume from {part}")
    _finish(part, dest, received, expected_sha256, url)


def _finish(part: Path, dest: Path, size: int, expected_sha256: str, url: str) -> None:
    if expected_sha256:
        actual = sha256_file(part)
        if actual != expected_sha256:
            part.unlink()
            raise PrepError(f"{url}: sha256 {actual} does not match the expected {expected_sha256}; "
                            f"the partial file was deleted, run again to download anew")
    os.replace(part, dest)


def ensure_files(files: list, base_url: str, directory: Path, log=print) -> dict:
    """Make every file present in ``directory``, downloading what is missing.

    Offline (no server reachable) it fails at once, listing each missing file with its URL
    and the path where a copy placed by hand will be picked up.
    """
    directory.mkdir(parents=True, exist_ok=True)
    unreachable = []
    for remote in files:
        dest = directory / remote.name
        if dest.exists():
            continue
        url = base_url.rstrip("/") + "/" + remote.name
        log(f"[prep] downloading {url}")
        try:
            fetch(url, dest, remote.sha256)
        except Unreachable as err:
            unreachable.append((remote, url, str(err)))
    if unreachable:
        lines = [f"cannot download {len(unreachable)} file(s) (no network? {unreachable[0][2]}).",
                 "Place them by hand and run the same command again:"]
        lines += [f"  {directory / remote.name}   <- {url}" for remote, url, _ in unreachable]
        lines.append("(or point --mirror-url at a server that has them)")
        raise PrepError("\n".join(lines))
    described = {}
    for remote in files:
        dest = directory / remote.name
        sha = sha256_file(dest)
        if remote.sha256 and sha != remote.sha256:
            raise PrepError(f"{dest}: sha256 {sha} does not match the expected {remote.sha256}")
        described[remote.name] = {"path": str(dest), "sha256": sha, "bytes": dest.stat().st_size}
    return described
