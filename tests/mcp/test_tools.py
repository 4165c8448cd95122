"""Tool listing: names, descriptions, and schemas a JSON Schema validator
accepts."""

import jsonschema
import pytest

from conftest import MODES, stdio_client, structured

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "run_python", "run_javascript", "create_session", "list_sessions", "close_session",
    "list_files", "read_file", "write_file", "describe_sandbox",
}


@pytest.mark.parametrize("mode", MODES)
async def test_tools_list_and_schemas(mode):
    async with stdio_client(mode=mode) as client:
        tools = (await client.list_tools()).tools
    assert {tool.name for tool in tools} == EXPECTED_TOOLS
    for tool in tools:
        assert tool.description and len(tool.description) > 40, tool.name
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema is not None, tool.name
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)


async def test_run_description_names_the_sandbox_rules():
    async with stdio_client() as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    description = tools["run_python"].description
    assert "no network" in description
    assert "/workspace" in description
    assert "session_id" in description
    assert tools["run_python"].input_schema["required"] == ["code"]


async def test_describe_sandbox_tool_and_resource():
    async with stdio_client("--timeout", "7s") as client:
        result = await client.call_tool("describe_sandbox", {})
        resource = await client.read_resource("moat://sandbox")
    description = structured(result)
    assert result.is_error is False
    assert description["network"] == "none"
    assert description["default_limits"]["timeout_ms"] == 7000
    languages = {entry["language"]: entry for entry in description["languages"]}
    assert languages["python"]["available"] is True
    assert "sqlite3" in languages["python"]["modules"]
    assert languages["javascript"]["available"] is True
    assert resource.contents[0].text == description["text"]
    assert "timeout_ms: 7000" in description["text"]
