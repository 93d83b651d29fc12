"""MCP (Model Context Protocol) client connector: a server's tools as tables."""
