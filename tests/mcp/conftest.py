"""Shared fixtures: a moat server over stdio or streamable HTTP, driven by
the official MCP Python SDK as the client.

The tests need MOAT_BIN (the moat binary) and MOAT_GUEST_DIR (the built
guests); `cargo xtask test` sets both.
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

MOAT_BIN = os.environ.get("MOAT_BIN", "")
GUEST_DIR = os.environ.get("MOAT_GUEST_DIR", "")
# Every server of these tests records to one audit store unless a test
# passes its own --audit-db; SQLite serializes the servers' appends.
AUDIT_DB = os.environ.get("MOAT_AUDIT_DB") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(MOAT_BIN or "."))), "test-audit", "mcp.db"
)

# Both protocol eras: "legacy" forces the initialize handshake (2025-11-25
# and earlier); "auto" probes server/discover and uses 2026-07-28.
MODES = ["legacy", "auto"]


def pytest_configure(config):
    if not MOAT_BIN or not os.path.exists(MOAT_BIN):
        pytest.exit(f"MOAT_BIN must name the moat binary, got {MOAT_BIN!r}", returncode=2)
    if not GUEST_DIR or not os.path.isdir(GUEST_DIR):
        pytest.exit(f"MOAT_GUEST_DIR must name the built guests, got {GUEST_DIR!r}", returncode=2)


def server_env(extra=None):
    env = {"MOAT_GUEST_DIR": GUEST_DIR, "MOAT_LOG": "warn", "MOAT_AUDIT_DB": AUDIT_DB}
    env.update(extra or {})
    return env


@asynccontextmanager
async def stdio_client(*args, mode="auto", **client_options):
    """A Client connected to `moat serve ARGS` over stdio."""
    params = StdioServerParameters(command=MOAT_BIN, args=["serve", *args], env=server_env())
    async with Client(params, mode=mode, **client_options) as client:
        yield client


class HttpServer:
    """`moat serve --http 127.0.0.1:0` running in the background."""

    def __init__(self, *args, token=None, no_auth=False):
        self.token = token
        command = [MOAT_BIN, "serve", "--http", "127.0.0.1:0", *args]
        env = dict(os.environ)
        env.update(server_env())
        env.pop("MOAT_TOKEN", None)
        if no_auth:
            command.append("--no-auth")
        elif token is not None:
            env["MOAT_TOKEN"] = token
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        self.url = self._read_url()
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def _read_url(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            match = re.search(r"serving MCP on (http://\S+)", line)
            if match:
                return match.group(1)
        self.process.kill()
        raise RuntimeError(f"moat serve --http did not start: {self.process.stderr.read()}")

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @asynccontextmanager
    async def client(self, mode="auto", headers=None, **client_options):
        http = httpx2.AsyncClient(headers=headers if headers is not None else self.headers(),
                                  timeout=httpx2.Timeout(60.0))
        async with http:
            transport = streamable_http_client(self.url, http_client=http)
            async with Client(transport, mode=mode, **client_options) as client:
                yield client

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stderr.close()


@pytest.fixture
def http_server():
    servers = []

    def start(*args, token="", no_auth=False):
        if token == "" and not no_auth:
            token = secrets.token_hex(24)
        server = HttpServer(*args, token=token or None, no_auth=no_auth)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def structured(result):
    """The structured content of a tool result."""
    assert result.structured_content is not None, result
    return result.structured_content


@pytest.fixture
def anyio_backend():
    return "asyncio"
