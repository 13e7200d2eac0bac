"""licensing service."""
