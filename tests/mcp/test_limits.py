"""Each limit stops a run and is named in the outcome; requests are capped
by the server's maxima."""

import pytest

from conftest import stdio_client, structured

pytestmark = pytest.mark.anyio

CASES = [
    ("timeout", "while True: pass", {"timeout_ms": 300}),
    ("fuel_exhausted", "while True: pass", {"fuel": 5_000_000}),
    ("memory_limit", "x = bytearray(200 * 1024 * 1024)", {"memory_bytes": 64 * 1024 * 1024}),
    ("output_truncated", "print('x' * 10_000)", {"stdout_bytes": 1000}),
    ("output_truncated", "import sys\nsys.stderr.write('e' * 10_000)", {"stderr_bytes": 1000}),
]


@pytest.mark.parametrize("outcome,code,limits", CASES, ids=[c[0] + "-" + str(i) for i, c in enumerate(CASES)])
async def test_limit_stops_run(outcome, code, limits):
    async with stdio_client() as client:
        result = await client.call_tool("run_python", {"code": code, "limits": limits})
    body = structured(result)
    assert result.is_error is True
    assert body["outcome"] == outcome, body
    assert body["limit_message"]
    assert body["exit_code"] is None
    for name, value in limits.items():
        assert body["limits"][name] == value


async def test_javascript_timeout():
    async with stdio_client() as client:
        result = await client.call_tool("run_javascript", {"code": "for (;;) {}", "limits": {"timeout_ms": 300}})
    assert structured(result)["outcome"] == "timeout"


async def test_requested_limits_are_capped():
    async with stdio_client(
        "--timeout", "1s", "--timeout-ceiling", "2s", "--fuel", "500000000", "--fuel-ceiling", "1000000000"
    ) as client:
        result = await client.call_tool(
            "run_python", {"code": "1", "limits": {"timeout_ms": 600_000, "fuel": 10**15}}
        )
        default = await client.call_tool("run_python", {"code": "1"})
    assert structured(result)["limits"]["timeout_ms"] == 2000
    assert structured(result)["limits"]["fuel"] == 1_000_000_000
    assert structured(default)["limits"]["timeout_ms"] == 1000
    assert structured(default)["limits"]["fuel"] == 500_000_000
