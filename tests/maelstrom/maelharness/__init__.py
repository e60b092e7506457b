"""Maelstrom-compatible test harness for dsd (see ../README.md)."""
