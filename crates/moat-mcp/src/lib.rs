//! moat's MCP server.
