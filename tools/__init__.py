"""Developer tools of the suite (local launcher)."""
