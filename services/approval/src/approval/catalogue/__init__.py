"""The catalogue of approval items (事项) and their versioned service guides (办事指南)."""
