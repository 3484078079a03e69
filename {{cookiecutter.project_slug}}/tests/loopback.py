"""Talking to a server a test started: on 127.0.0.1 only, and every wait has a deadline."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_file(url: str, name: str, data: bytes, field: str = "image", timeout: float = 60) -> tuple[int, dict]:
    """POST one file as multipart/form-data, like ``curl -F image=@name``; returns (status, JSON answer)."""
    assert url.startswith("http://127.0.0.1:"), url  # tests talk to this computer only
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n")
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_page(url: str, process: subprocess.Popen | None = None, seconds: float = 120) -> None:
    """Return once ``url`` answers 200; fail if the server process exits or the deadline passes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server stopped with exit code {process.returncode}")
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds:.0f} s")
