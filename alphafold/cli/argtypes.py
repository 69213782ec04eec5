"""Argument types shared by the subcommands: counts, sizes, seeds and tolerances that must not be
negative (or must be positive), and the model's chunk size.

Use them as argparse ``type=``. A bad value is rejected while the command line is parsed, before any
work starts, with argparse's error naming the option and the value, exit code 2, e.g.

    alphafold features: error: argument --max-templates: expected an integer >= 0, got '-1'

Every ``alphafold`` invocation imports this module (it sits in the package whose modules are discovered
as subcommands), so it imports nothing heavy. It defines no ``register``: it is not a subcommand.
"""

from __future__ import annotations

import argparse
import math


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
    return value


def _number(text: str, minimum: float, strict: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A count that may be zero: recycles, templates, seeds."""
    return _integer(text, 0)


def positive_int(text: str) -> int:
    """A count that must be at least one: CPUs, ranks, blocks, attempts, lengths."""
    return _integer(text, 1)


def non_negative_float(text: str) -> float:
    """A tolerance or resource share that may be zero."""
    return _number(text, 0.0, strict=False)


def positive_float(text: str) -> float:
    """A duration or budget that must be above zero."""
    return _number(text, 0.0, strict=True)


def chunk_size(text: str) -> int | str | None:
    """Rows per chunk of the model's chunked layers: a positive integer, 'auto' (chosen from free memory)
    or 'none' (unchunked)."""
    if text.lower() == "auto":
        return "auto"
    if text.lower() == "none":
        return None
    try:
        return _integer(text, 1)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, 'auto' or 'none', got {text!r}"
        ) from None
