"""Contracts: input events, dead-letter records and topic names (pydantic v2)."""
