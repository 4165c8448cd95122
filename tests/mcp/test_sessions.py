"""Sessions: state across calls, files, listing, closing, restarts."""

import anyio
import pytest

from conftest import MODES, stdio_client, structured

pytestmark = pytest.mark.anyio


async def create(client, language):
    result = await client.call_tool("create_session", {"language": language})
    assert result.is_error is False
    return structured(result)["session_id"]


@pytest.mark.parametrize("mode", MODES)
async def test_python_session_keeps_state_across_three_calls(mode):
    async with stdio_client(mode=mode) as client:
        session = await create(client, "python")
        first = await client.call_tool("run_python", {"code": "import statistics\nxs = [1, 2, 3]", "session_id": session})
        second = await client.call_tool("run_python", {"code": "xs.append(10)\nlen(xs)", "session_id": session})
        third = await client.call_tool("run_python", {"code": "statistics.mean(xs)", "session_id": session})
    assert structured(first)["outcome"] == "ok"
    assert structured(second)["result"] == "4"
    assert structured(third)["result"] == "4"
    assert structured(third)["session_id"] == session
    assert structured(third)["session_restarted"] is False


async def test_javascript_session_keeps_state():
    async with stdio_client() as client:
        session = await create(client, "javascript")
        await client.call_tool("run_javascript", {"code": "globalThis.total = 1", "session_id": session})
        await client.call_tool("run_javascript", {"code": "total += 41", "session_id": session})
        result = await client.call_tool("run_javascript", {"code": "total", "session_id": session})
    assert structured(result)["result"] == "42"


async def test_session_list_and_close():
    async with stdio_client() as client:
        session = await create(client, "python")
        listed = structured(await client.call_tool("list_sessions", {}))
        closed = structured(await client.call_tool("close_session", {"session_id": session}))
        after = structured(await client.call_tool("list_sessions", {}))
    assert [entry["session_id"] for entry in listed["sessions"]] == [session]
    assert listed["sessions"][0]["language"] == "python"
    assert closed == {"session_id": session, "cancelled_run": False}
    assert after["sessions"] == []


async def test_session_workspace_files():
    async with stdio_client() as client:
        session = await create(client, "python")
        written = await client.call_tool(
            "write_file", {"session_id": session, "path": "data/in.txt", "content": "hello"}
        )
        run = await client.call_tool(
            "run_python",
            {"code": "open('data/out.bin', 'wb').write(bytes([0, 255]) + open('data/in.txt', 'rb').read())",
             "session_id": session},
        )
        listing = structured(await client.call_tool("list_files", {"session_id": session}))
        text = await client.call_tool("read_file", {"session_id": session, "path": "data/in.txt"})
        binary = await client.call_tool("read_file", {"session_id": session, "path": "/workspace/data/out.bin"})
        resource = await client.read_resource(structured(binary)["uri"])
    assert structured(written)["size_bytes"] == 5
    changed = structured(run)["files"]
    assert [(entry["path"], entry["change"], entry["content"]) for entry in changed] == [
        ("data/out.bin", "created", None)
    ]
    paths = {entry["path"]: entry["kind"] for entry in listing["entries"]}
    assert paths == {"data": "directory", "data/in.txt": "file", "data/out.bin": "file"}
    assert structured(text)["content"] == "hello"
    assert text.content[0].text == "hello"
    assert structured(binary)["encoding"] == "base64"
    assert structured(binary)["content"] == "AP9oZWxsbw=="
    assert resource.contents[0].blob == "AP9oZWxsbw=="


async def test_limit_restarts_session_but_keeps_files():
    async with stdio_client() as client:
        session = await create(client, "python")
        await client.call_tool(
            "run_python", {"code": "x = 1\nopen('kept.txt', 'w').write('yes')", "session_id": session}
        )
        stopped = await client.call_tool(
            "run_python", {"code": "while True: pass", "session_id": session, "limits": {"timeout_ms": 300}}
        )
        after = await client.call_tool(
            "run_python", {"code": "open('kept.txt').read() + str('x' in globals())", "session_id": session}
        )
    assert structured(stopped)["outcome"] == "timeout"
    assert structured(stopped)["session_restarted"] is True
    assert "restarted" in stopped.content[0].text
    assert structured(after)["outcome"] == "ok"
    assert structured(after)["result"] == "'yesFalse'"


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_mid_run_then_same_session_works(mode):
    async with stdio_client(mode=mode) as client:
        session = await create(client, "python")
        await client.call_tool("run_python", {"code": "open('f.txt', 'w').write('kept')", "session_id": session})

        started = anyio.current_time()
        with anyio.move_on_after(0.5):
            await client.call_tool("run_python", {"code": "while True: pass", "session_id": session})
        assert anyio.current_time() - started < 5

        with anyio.fail_after(10):
            after = await client.call_tool(
                "run_python", {"code": "print(open('f.txt').read())\n2 + 2", "session_id": session}
            )
    body = structured(after)
    assert body["outcome"] == "ok", body
    assert body["stdout"] == "kept\n"
    assert body["result"] == "4"
    assert body["session_restarted"] is True


async def test_session_limit(tmp_path):
    async with stdio_client("--max-sessions", "2") as client:
        await create(client, "python")
        await create(client, "javascript")
        with pytest.raises(Exception) as raised:
            await client.call_tool("create_session", {"language": "python"})
    assert "session limit reached: 2 sessions are open" in str(raised.value)


async def test_idle_session_expires():
    async with stdio_client("--session-idle-timeout", "1s") as client:
        session = await create(client, "python")
        await anyio.sleep(2.5)
        listed = structured(await client.call_tool("list_sessions", {}))
        with pytest.raises(Exception) as raised:
            await client.call_tool("run_python", {"code": "1", "session_id": session})
    assert listed["sessions"] == []
    assert "unknown session" in str(raised.value)
