"""Conformance cases, one module per PROTOCOL.md section (h2spec style)."""
