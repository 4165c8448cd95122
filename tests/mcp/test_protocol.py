"""Protocol behaviour: progress and logging notifications, shutdown."""

import os
import signal
import subprocess
import time

import anyio
import pytest

from conftest import GUEST_DIR, MOAT_BIN, stdio_client, structured

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_progress_during_long_run(mode):
    updates = []

    async def on_progress(progress, total, message):
        updates.append((progress, total, message))

    async with stdio_client(mode=mode) as client:
        result = await client.call_tool(
            "run_python", {"code": "import time\ntime.sleep(2.3)\n'done'"}, progress_callback=on_progress
        )
    assert structured(result)["result"] == "'done'"
    assert len(updates) >= 2, updates
    assert updates[0][0] >= 1.0
    assert updates[0][1] == 30.0
    assert "running for" in updates[0][2]


async def test_no_progress_for_short_run():
    updates = []

    async def on_progress(progress, total, message):
        updates.append(progress)

    async with stdio_client() as client:
        await client.call_tool("run_python", {"code": "1"}, progress_callback=on_progress)
    assert updates == []


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdout_lines_as_logging(mode):
    messages = []

    async def on_log(params):
        messages.append((params.logger, params.data))

    async with stdio_client(mode=mode, logging_callback=on_log, log_level="info") as client:
        if mode == "legacy":
            await client.session.set_logging_level("info")
        await client.call_tool("run_python", {"code": "print('one')\nprint('two')"})
        await anyio.sleep(0.2)
    assert ("stdout", "one") in messages
    assert ("stdout", "two") in messages


async def test_no_logging_unless_asked():
    messages = []

    async def on_log(params):
        messages.append(params)

    async with stdio_client(logging_callback=on_log) as client:
        await client.call_tool("run_python", {"code": "print('quiet')"})
        await anyio.sleep(0.2)
    assert messages == []


def test_sigterm_cancels_run_and_exits_cleanly():
    """A run in progress is cancelled after the grace period and the process
    exits with status 0."""
    import json

    process = subprocess.Popen(
        [MOAT_BIN, "serve", "--shutdown-grace", "500ms"],
        env={**os.environ, "MOAT_GUEST_DIR": GUEST_DIR, "MOAT_LOG": "warn"},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )

    def send(message):
        process.stdin.write((json.dumps(message) + "\n").encode())
        process.stdin.flush()

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "shutdown-test", "version": "1"}}})
    assert json.loads(process.stdout.readline())["id"] == 1
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
          "params": {"name": "run_python", "arguments": {"code": "while True: pass"}}})
    time.sleep(0.5)

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    response = json.loads(process.stdout.readline())
    status = process.wait(timeout=10)
    elapsed = time.monotonic() - started
    process.stdin.close()
    process.stdout.close()
    process.stderr.close()

    assert response["id"] == 2
    assert response["result"]["isError"] is True
    assert response["result"]["structuredContent"]["outcome"] == "cancelled"
    assert "shut down" in response["result"]["structuredContent"]["limit_message"]
    assert status == 0
    assert elapsed < 5
