"""Runs in both languages: output, result value, errors, files."""

import base64

import pytest

from conftest import MODES, stdio_client, structured

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", MODES)
async def test_python_run_returns_output_and_value(mode):
    async with stdio_client(mode=mode) as client:
        result = await client.call_tool("run_python", {"code": "import json\nprint(json.dumps([1, 2]))\n6 * 7"})
    body = structured(result)
    assert result.is_error is False
    assert body["outcome"] == "ok"
    assert body["exit_code"] == 0
    assert body["stdout"] == "[1, 2]\n"
    assert body["result"] == "42"
    assert body["session_id"] is None
    assert body["duration_ms"] > 0
    assert body["fuel_used"] > 0
    assert body["peak_memory_bytes"] > 0
    assert "[1, 2]" in result.content[0].text


@pytest.mark.parametrize("mode", MODES)
async def test_javascript_run_returns_output_and_value(mode):
    async with stdio_client(mode=mode) as client:
        result = await client.call_tool(
            "run_javascript", {"code": "console.log('hi');\nconst xs = [1, 2, 3];\nxs.map(x => x * 2)"}
        )
    body = structured(result)
    assert result.is_error is False
    assert body["outcome"] == "ok"
    assert body["stdout"] == "hi\n"
    assert body["result"] == "[ 2, 4, 6 ]"


async def test_exception_is_a_tool_error():
    async with stdio_client() as client:
        result = await client.call_tool("run_python", {"code": "1 / 0"})
    body = structured(result)
    assert result.is_error is True
    assert body["outcome"] == "error"
    assert body["exit_code"] == 1
    assert body["error"]["name"] == "ZeroDivisionError"
    assert "ZeroDivisionError" in result.content[0].text


async def test_exit_status_is_reported():
    async with stdio_client() as client:
        result = await client.call_tool("run_javascript", {"code": "process.exit(3)"})
    body = structured(result)
    assert result.is_error is True
    assert body["exit_code"] == 3


async def test_input_files_and_created_files():
    blob = bytes(range(256))
    code = (
        "import pathlib\n"
        "rows = pathlib.Path('in/data.csv').read_text().splitlines()\n"
        "pathlib.Path('out.txt').write_text(str(len(rows)))\n"
        "raw = pathlib.Path('/workspace/blob.bin').read_bytes()\n"
        "pathlib.Path('copy.bin').write_bytes(raw[::-1])\n"
        "len(raw)"
    )
    files = [
        {"path": "in/data.csv", "content": "a,b\n1,2\n3,4\n"},
        {"path": "blob.bin", "content": base64.b64encode(blob).decode(), "encoding": "base64"},
    ]
    async with stdio_client() as client:
        result = await client.call_tool("run_python", {"code": code, "files": files})
    body = structured(result)
    assert body["outcome"] == "ok", body
    assert body["result"] == "256"
    changed = {entry["path"]: entry for entry in body["files"]}
    assert set(changed) == {"out.txt", "copy.bin"}
    assert changed["out.txt"]["change"] == "created"
    assert changed["out.txt"]["content"] == "3"
    assert changed["out.txt"]["encoding"] == "text"
    assert changed["copy.bin"]["encoding"] == "base64"
    assert base64.b64decode(changed["copy.bin"]["content"]) == blob[::-1]


async def test_no_network_in_the_sandbox():
    async with stdio_client() as client:
        result = await client.call_tool(
            "run_python", {"code": "import socket\nsocket.create_connection(('127.0.0.1', 9))"}
        )
    body = structured(result)
    assert result.is_error is True
    assert body["outcome"] == "error"
