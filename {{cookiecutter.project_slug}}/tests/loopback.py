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


def post(url: str, body: bytes, content_type: str, timeout: float = 60) -> tuple[int, dict, str]:
    """POST raw bytes; returns (status, response headers in lowercase, response text)."""
    assert url.startswith("http://127.0.0.1:"), url
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()


def multipart(files: list[tuple[str, bytes]], field: str = "files") -> tuple[bytes, str]:
    """A multipart/form-data body with these files, and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
              "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n" for name, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def gradio_call(url: str, api_name: str, data: list, timeout: float = 60) -> tuple[int, str]:
    """Gradio's HTTP API: POST /gradio_api/call/<name>, then read the answer's event stream.

    Returns (status of the POST, the stream's text), or (status, the refusal) when the POST is refused.
    """
    status, _, text = post(f"{url}/gradio_api/call/{api_name}", json.dumps({"data": data}).encode(),
                           "application/json", timeout)
    if status != 200:
        return status, text
    event = json.loads(text)["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/{api_name}/{event}", timeout=timeout) as response:
        return status, response.read().decode()


def hold_requests(url: str, count: int) -> list[socket.socket]:
    """``count`` uploads that send their headers and the start of a body, then wait: requests in flight."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    held = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        connection.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
                           b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n")
        held.append(connection)
    return held
