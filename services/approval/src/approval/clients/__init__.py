"""Typed clients of the other services."""
