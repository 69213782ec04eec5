"""Shared constants and small utilities used by data, model and outputs."""
