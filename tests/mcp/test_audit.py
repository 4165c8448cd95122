"""The audit trail as MCP clients fill it: who ran what, sessions, failing
closed when the store cannot be written, and a chain that survives kill -9.

Each test gives its server its own store and reads it back with the moat
binary (`moat audit show`, `moat audit verify`) or with sqlite3.
"""

import json
import os
import signal
import sqlite3
import subprocess

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation

from conftest import MOAT_BIN, MODES, server_env, structured, stdio_client

pytestmark = pytest.mark.anyio


def audit(db, *args):
    """Runs `moat audit ARGS --audit-db DB` and returns the finished process."""
    env = dict(os.environ)
    env.update(server_env({"MOAT_AUDIT_DB": str(db)}))
    return subprocess.run([MOAT_BIN, "audit", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def records(db):
    """Every stored record body, in chain order."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT body FROM entries ORDER BY seq").fetchall()
    return [json.loads(body)["event"] for (body,) in rows]


def executions(db):
    return [event for event in records(db) if event["kind"] == "execution"]


@pytest.mark.parametrize("mode", MODES)
async def test_http_run_records_client_model_principal_and_tenant(http_server, tmp_path, mode):
    db = tmp_path / "audit.db"
    server = http_server("--audit-db", str(db))
    headers = dict(server.headers())
    headers.update({"X-Moat-Principal": "alice@example.test", "X-Moat-Tenant": "acme"})
    async with server.client(mode=mode, headers=headers,
                             client_info=Implementation(name="audit-probe", version="9.1")) as client:
        result = await client.call_tool("run_python", {"code": "print('audited')\n6 * 7"},
                                        meta={"moat/model": "test-model-1"})
    run = structured(result)
    assert run["result"] == "42"

    (execution,) = executions(db)
    assert execution["execution_id"] == run["execution_id"]
    assert execution["actor"] == {
        "principal": "alice@example.test",
        "tenant": "acme",
        "transport": "http",
        "client": {"name": "audit-probe", "version": "9.1"},
        "model": "test-model-1",
    }
    assert execution["stdout"]["text"] == "audited\n"
    assert execution["code"]["text"] == "print('audited')\n6 * 7"
    assert execution["outcome"] == "ok"
    started = [event for event in records(db) if event["kind"] == "execution_started"]
    assert [event["execution_id"] for event in started] == [run["execution_id"]]


async def test_stdio_records_sessions_and_model_flag(tmp_path):
    db = tmp_path / "audit.db"
    async with stdio_client("--audit-db", str(db), "--model", "flag-model") as client:
        session = structured(await client.call_tool("create_session", {"language": "javascript"}))
        session_id = session["session_id"]
        run = structured(await client.call_tool(
            "run_javascript", {"code": "console.log(1 + 1)", "session_id": session_id}))
        await client.call_tool("close_session", {"session_id": session_id})

    kinds = [(event["kind"], event.get("session_id")) for event in records(db)]
    assert kinds == [
        ("session_created", session_id),
        ("execution_started", session_id),
        ("execution", session_id),
        ("session_closed", session_id),
    ]
    execution = executions(db)[0]
    assert execution["execution_id"] == run["execution_id"]
    assert execution["actor"]["transport"] == "stdio"
    assert execution["actor"]["model"] == "flag-model"
    assert execution["actor"]["principal"], "stdio runs are recorded as the local user"
    assert execution["language"] == "javascript"
    assert execution["stdout"]["text"] == "2\n"


async def test_files_given_and_produced_are_recorded_with_hashes(tmp_path):
    import hashlib

    db = tmp_path / "audit.db"
    code = "data = open('in.txt').read()\nopen('out.txt', 'w').write(data.upper())"
    async with stdio_client("--audit-db", str(db)) as client:
        await client.call_tool("run_python", {
            "code": code, "files": [{"path": "in.txt", "content": "hello"}]})
    (execution,) = executions(db)
    assert execution["files_in"] == [{
        "path": "in.txt", "change": "input", "size": 5,
        "sha256": hashlib.sha256(b"hello").hexdigest()}]
    assert execution["files_out"] == [{
        "path": "out.txt", "change": "created", "size": 5,
        "sha256": hashlib.sha256(b"HELLO").hexdigest()}]


async def test_store_that_cannot_be_written_refuses_the_run(tmp_path):
    db = tmp_path / "audit.db"
    marker = tmp_path / "ran.txt"
    async with stdio_client("--audit-db", str(db), "--dir", f"{tmp_path}:/host") as client:
        first = structured(await client.call_tool("run_python", {"code": "1"}))
        assert first["outcome"] == "ok"
        # Another process holds the store's write lock for longer than moat
        # waits for it (10 s), so the run's first record cannot be written.
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(MCPError) as refused:
                await client.call_tool("run_python", {
                    "code": "open('/host/ran.txt', 'w').write('x')\nprint('ran')"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # Once the store is writable again, runs go on.
        after = structured(await client.call_tool("run_python", {"code": "2"}))
    assert "audit trail cannot be written, so the code was not run" in str(refused.value)
    assert not marker.exists(), "the refused code ran"
    assert after["outcome"] == "ok"
    assert [event["code"]["text"] for event in executions(db)] == ["1", "2"]


async def test_kill_keeps_completed_runs(http_server, tmp_path):
    db = tmp_path / "audit.db"
    server = http_server("--audit-db", str(db), "--max-concurrent", "8")
    completed = []

    async def worker(client, index):
        for round_ in range(1000):
            try:
                result = await client.call_tool(
                    "run_python", {"code": f"sum(range({index * 1000 + round_}))"})
            except Exception:
                return
            completed.append(structured(result)["execution_id"])

    try:
        async with server.client() as client:
            async with anyio.create_task_group() as group:
                for index in range(4):
                    group.start_soon(worker, client, index)
                # Let runs complete, then kill the server mid-flight.
                with anyio.fail_after(120):
                    while len(completed) < 40:
                        await anyio.sleep(0.05)
                server.process.send_signal(signal.SIGKILL)
                server.process.wait()
                group.cancel_scope.cancel()
    except* Exception:
        # The connection dies with the server; only the store matters here.
        pass

    assert len(completed) >= 40
    verified = audit(db, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    recorded = {event["execution_id"] for event in executions(db)}
    missing = [execution for execution in completed if execution not in recorded]
    assert missing == [], f"{len(missing)} completed runs have no record"
    for execution_id in completed[:3]:
        shown = audit(db, "show", execution_id, "--json")
        assert shown.returncode == 0, shown.stderr
        assert execution_id in shown.stdout


async def test_sessions_belong_to_their_principal_and_tenant(http_server, tmp_path):
    server = http_server("--audit-db", str(tmp_path / "audit.db"))

    def as_caller(principal, tenant):
        headers = dict(server.headers())
        headers.update({"X-Moat-Principal": principal, "X-Moat-Tenant": tenant})
        return server.client(headers=headers)

    async with as_caller("alice", "acme") as alice:
        session = structured(await alice.call_tool("create_session", {"language": "python"}))
        session_id = session["session_id"]
        await alice.call_tool("run_python", {"code": "secret = 41", "session_id": session_id})

    async with as_caller("mallory", "other") as mallory:
        listed = structured(await mallory.call_tool("list_sessions", {}))
        assert listed["sessions"] == []
        with pytest.raises(MCPError) as refused:
            await mallory.call_tool("run_python", {"code": "secret", "session_id": session_id})
        assert "unknown session" in str(refused.value)
        with pytest.raises(MCPError):
            await mallory.call_tool("close_session", {"session_id": session_id})

    async with as_caller("alice", "acme") as alice_again:
        listed = structured(await alice_again.call_tool("list_sessions", {}))
        assert [item["session_id"] for item in listed["sessions"]] == [session_id]
        result = structured(await alice_again.call_tool(
            "run_python", {"code": "secret + 1", "session_id": session_id}))
        assert result["result"] == "42"
