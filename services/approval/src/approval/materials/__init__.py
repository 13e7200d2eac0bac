"""Application materials: uploads checked by content, or e-licences we already hold (减证便民)."""
