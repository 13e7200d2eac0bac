"""approval service."""
