"""Applicants' electronic signatures made on their phones (signing sessions), DESIGN in docs/signatures.md."""
