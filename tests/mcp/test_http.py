"""Streamable HTTP: runs, concurrency, authentication, Origin and Host."""

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from conftest import MODES, structured

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "raw", "version": "1"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.parametrize("mode", MODES)
async def test_http_session_and_runs(http_server, mode):
    server = http_server()
    async with server.client(mode=mode) as client:
        session = structured(await client.call_tool("create_session", {"language": "python"}))["session_id"]
        await client.call_tool("run_python", {"code": "n = 20", "session_id": session})
        result = await client.call_tool("run_python", {"code": "n + 1", "session_id": session})
        js = await client.call_tool("run_javascript", {"code": "'a' + 'b'"})
    assert structured(result)["result"] == "21"
    assert structured(js)["result"] == "'ab'"


@pytest.mark.parametrize("mode", MODES)
async def test_twenty_concurrent_runs(http_server, mode):
    server = http_server("--max-concurrent", "20")
    results = {}

    async def one(client, index):
        result = await client.call_tool("run_python", {"code": f"import time\ntime.sleep(0.5)\n{index} * 2"})
        results[index] = result

    async with server.client(mode=mode) as client:
        async with anyio.create_task_group() as group:
            for index in range(20):
                group.start_soon(one, client, index)
    assert len(results) == 20
    for index, result in results.items():
        assert structured(result)["outcome"] == "ok"
        assert structured(result)["result"] == str(index * 2)


async def test_busy_error_past_the_concurrency_limit(http_server):
    server = http_server("--max-concurrent", "1")
    async with server.client() as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "run_python", {"code": "import time\ntime.sleep(1.5)"})
            await anyio.sleep(0.5)
            with pytest.raises(MCPError) as raised:
                await client.call_tool("run_python", {"code": "1"})
    assert raised.value.error.code == -32000
    assert "server busy: 1 executions are already running" in raised.value.error.message


async def test_request_without_token_is_rejected(http_server):
    server = http_server()
    async with httpx2.AsyncClient() as http:
        missing = await http.post(server.url, json=INITIALIZE, headers=ACCEPT)
        wrong = await http.post(server.url, json=INITIALIZE,
                                headers={**ACCEPT, "Authorization": "Bearer " + "0" * 48})
        right = await http.post(server.url, json=INITIALIZE, headers={**ACCEPT, **server.headers()})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer TOKEN" in missing.text
    assert wrong.status_code == 401
    assert right.status_code == 200


async def test_sdk_client_without_token_fails(http_server):
    server = http_server()
    with pytest.raises(Exception):
        with anyio.fail_after(20):
            async with server.client(headers={}) as client:
                await client.list_tools()


async def test_foreign_origin_is_rejected(http_server):
    server = http_server()
    headers = {**ACCEPT, **server.headers()}
    async with httpx2.AsyncClient() as http:
        foreign = await http.post(server.url, json=INITIALIZE, headers={**headers, "Origin": "https://evil.example"})
        null = await http.post(server.url, json=INITIALIZE, headers={**headers, "Origin": "null"})
        own = await http.post(server.url, json=INITIALIZE,
                              headers={**headers, "Origin": f"http://localhost:{server.port}"})
    assert foreign.status_code == 403
    assert "Origin" in foreign.text
    assert null.status_code == 403
    assert own.status_code == 200


async def test_foreign_host_is_rejected(http_server):
    server = http_server()
    headers = {**ACCEPT, **server.headers()}
    async with httpx2.AsyncClient() as http:
        rebound = await http.post(server.url, json=INITIALIZE, headers={**headers, "Host": f"attacker.example:{server.port}"})
        other_port = await http.post(server.url, json=INITIALIZE, headers={**headers, "Host": "localhost:1"})
    assert rebound.status_code == 403
    assert "Host" in rebound.text
    assert other_port.status_code == 403


async def test_no_auth_on_loopback(http_server):
    server = http_server(no_auth=True)
    async with server.client(headers={}) as client:
        result = await client.call_tool("run_python", {"code": "1 + 1"})
    assert structured(result)["result"] == "2"


async def test_http_session_ids_are_random(http_server):
    server = http_server()
    ids = set()
    async with httpx2.AsyncClient() as http:
        for _ in range(3):
            response = await http.post(server.url, json=INITIALIZE, headers={**ACCEPT, **server.headers()})
            ids.add(response.headers.get("mcp-session-id"))
    assert len(ids) == 3
    for session_id in ids:
        assert session_id and len(session_id) >= 32


async def test_request_size_follows_the_file_size_limit(http_server):
    server = http_server()
    # 6 MiB of text is over rmcp's own 4 MiB default body limit, and within
    # the server's 16 MiB request limit.
    content = "x" * (6 * 1024 * 1024)
    async with server.client() as client:
        result = await client.call_tool("run_python", {
            "code": "len(open('big.txt').read())",
            "files": [{"path": "big.txt", "content": content}],
        })
        assert structured(result)["result"] == str(len(content))
        with pytest.raises(Exception):
            await client.call_tool("run_python", {
                "code": "1",
                "files": [{"path": "huge.txt", "content": "y" * (17 * 1024 * 1024)}],
            })


async def test_small_request_limit_rejected():
    import subprocess

    from conftest import MOAT_BIN, server_env

    finished = subprocess.run(
        [MOAT_BIN, "serve", "--http", "127.0.0.1:0", "--no-auth", "--max-request-size", "1MiB"],
        env=server_env(), capture_output=True, text=True, timeout=60)
    assert finished.returncode == 125
    assert "request size limit" in finished.stderr
