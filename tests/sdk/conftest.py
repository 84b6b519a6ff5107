"""Starts real Switchyard processes for the SDK tests: two OpenAI-format mock providers and a
gateway in front of them (`primary` then `fallback` behind the alias `chat`)."""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _binary() -> str:
    path = os.environ.get("SWITCHYARD_BIN", str(ROOT / "target" / "debug" / "switchyard"))
    if not Path(path).exists():
        raise RuntimeError(f"{path} not found: build it with `cargo build -p switchyard-gateway`")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready at {url}")


class Mock:
    def __init__(self, url: str):
        self.url = url

    def fault(self, rule: dict) -> None:
        req = urllib.request.Request(
            f"{self.url}/_mock/faults", data=json.dumps(rule).encode(), method="POST"
        )
        urllib.request.urlopen(req, timeout=5).read()

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/_mock/reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def requests(self) -> list:
        with urllib.request.urlopen(f"{self.url}/_mock/requests", timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture(scope="session")
def stack():
    binary = _binary()
    procs = []
    mocks = {}
    try:
        for name in ("primary", "fallback"):
            port = _free_port()
            p = subprocess.Popen(
                [binary, "mock", "--provider", "openai", "--port", str(port), "--name", name],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(p)
            mocks[name] = Mock(f"http://127.0.0.1:{port}")
            _wait_ready(f"{mocks[name].url}/health", p, f"mock {name}")
        port = _free_port()
        config = f"""
[server]
listen = "127.0.0.1:{port}"
[breaker]
failure_threshold = 1000
[timeouts]
headers_ms = 2000
first_token_ms = 2000
stall_ms = 1000
[models.chat]
targets = [
  {{ name = "primary", provider = "openai", base_url = "{mocks['primary'].url}/v1", api_key = "${{SDK_TEST_KEY}}", model = "primary-model" }},
  {{ name = "fallback", provider = "openai", base_url = "{mocks['fallback'].url}/v1", api_key = "${{SDK_TEST_KEY}}", model = "fallback-model" }},
]
"""
        cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        cfg.write(config)
        cfg.close()
        env = dict(os.environ, SDK_TEST_KEY="sk-sdk-test-secret", RUST_LOG="warn")
        gw = subprocess.Popen(
            [binary, "serve", "--config", cfg.name],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(gw)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(f"{url}/health", gw, "gateway")
        yield {"url": url, "mocks": mocks}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def mocks(stack):
    for m in stack["mocks"].values():
        m.reset()
    return stack["mocks"]


@pytest.fixture
def client(stack):
    from openai import OpenAI

    # max_retries=0: the SDK must see exactly what the gateway answered.
    return OpenAI(base_url=f"{stack['url']}/v1", api_key="client-key", max_retries=0, timeout=20)
