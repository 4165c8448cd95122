"""Bad arguments are JSON-RPC errors whose message names the problem."""

import pytest
from mcp.shared.exceptions import MCPError

from conftest import stdio_client, structured

pytestmark = pytest.mark.anyio

INVALID_PARAMS = -32602


async def call_error(client, tool, arguments):
    with pytest.raises(MCPError) as raised:
        await client.call_tool(tool, arguments)
    return raised.value


async def test_unknown_session():
    async with stdio_client() as client:
        error = await call_error(client, "run_python", {"code": "1", "session_id": "s-nope"})
    assert error.error.code == INVALID_PARAMS
    assert 'unknown session "s-nope"' in error.error.message


async def test_wrong_language_for_session():
    async with stdio_client() as client:
        created = await client.call_tool("create_session", {"language": "javascript"})
        session = structured(created)["session_id"]
        error = await call_error(client, "run_python", {"code": "1", "session_id": session})
    assert error.error.code == INVALID_PARAMS
    assert "is a javascript session, so it cannot run python" in error.error.message


async def test_oversized_code():
    async with stdio_client("--max-code-size", "1KiB") as client:
        error = await call_error(client, "run_python", {"code": "#" * 2000})
    assert error.error.code == INVALID_PARAMS
    assert "code is 2000 bytes, more than the server's limit of 1024 bytes" in error.error.message


async def test_unknown_argument_and_missing_code():
    async with stdio_client() as client:
        unknown = await call_error(client, "run_python", {"code": "1", "timeout": 5})
        missing = await call_error(client, "run_python", {})
    assert unknown.error.code == INVALID_PARAMS
    assert "unknown field `timeout`" in unknown.error.message
    assert "missing field `code`" in missing.error.message


async def test_zero_limit_and_bad_base64_and_escaping_path():
    async with stdio_client() as client:
        zero = await call_error(client, "run_python", {"code": "1", "limits": {"fuel": 0}})
        base64 = await call_error(
            client, "run_python", {"code": "1", "files": [{"path": "a.bin", "content": "@@", "encoding": "base64"}]}
        )
        escape = await call_error(client, "run_python", {"code": "1", "files": [{"path": "../x", "content": ""}]})
        absolute = await call_error(client, "run_python", {"code": "1", "files": [{"path": "/etc/x", "content": ""}]})
    assert "invalid limit fuel: must be greater than zero" in zero.error.message
    assert 'content of file "a.bin" is not valid base64' in base64.error.message
    assert "`..` is rejected" in escape.error.message
    assert "absolute paths are rejected" in absolute.error.message


async def test_file_tools_reject_escapes_and_unknown_files():
    async with stdio_client() as client:
        session = structured(await client.call_tool("create_session", {"language": "python"}))["session_id"]
        escape = await call_error(client, "read_file", {"session_id": session, "path": "../../etc/passwd"})
        missing = await call_error(client, "read_file", {"session_id": session, "path": "nope.txt"})
    assert "`..` is rejected" in escape.error.message
    assert 'no file at "nope.txt"' in missing.error.message


async def test_oversized_file_write():
    async with stdio_client("--max-file-size", "10") as client:
        session = structured(await client.call_tool("create_session", {"language": "python"}))["session_id"]
        error = await call_error(client, "write_file", {"session_id": session, "path": "a.txt", "content": "x" * 11})
    assert 'file "a.txt" is 11 bytes, more than the server\'s limit of 10 bytes' in error.error.message
