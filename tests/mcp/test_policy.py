"""moat serve with a policy file: network allow-list, limits and modules."""

import http.server
import threading

import pytest

from conftest import stdio_client, structured

pytestmark = pytest.mark.anyio


@pytest.fixture
def loopback_server():
    """A real HTTP server on 127.0.0.1 that answers every GET with its path."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"path={self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def write_policy(tmp_path, port):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f"""
name = "mcp-test"

[limits.default]
timeout = "20s"

[limits.max]
timeout = "30s"

[[egress]]
name = "local-api"
scheme = "http"
host = "api.test"
port = {port}
paths = ["/v1/"]
allow_private_addresses = true

[python]
modules = ["urllib", "json"]
"""
    )
    return policy


async def test_policy_allows_listed_destination(tmp_path, loopback_server):
    policy = write_policy(tmp_path, loopback_server)
    resolve = f"api.test:{loopback_server}:127.0.0.1"
    code = (
        "import urllib.request\n"
        f"urllib.request.urlopen('http://api.test:{loopback_server}/v1/rates').read().decode()"
    )
    async with stdio_client("--policy", str(policy), "--resolve", resolve) as client:
        allowed = structured(await client.call_tool("run_python", {"code": code}))
        denied = structured(
            await client.call_tool(
                "run_python",
                {"code": code.replace("/v1/rates", "/admin")},
            )
        )
        narrowed = structured(await client.call_tool("run_python", {"code": "import sqlite3"}))
        description = structured(await client.call_tool("describe_sandbox", {}))

    assert allowed["outcome"] == "ok"
    assert allowed["result"] == "'path=/v1/rates'"
    assert denied["outcome"] == "error"
    assert 'egress rule "local-api" allows paths /v1/' in denied["error"]["message"]
    assert narrowed["outcome"] == "error"
    assert "not allowed by the moat policy" in narrowed["error"]["message"]
    assert description["network"].startswith("allow-list: GET/HEAD http://api.test:")
    assert description["default_limits"]["timeout_ms"] == 20000
