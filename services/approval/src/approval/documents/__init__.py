"""Sealed documents: notices and decisions signed with the authority's seal, verifiable by anyone."""
