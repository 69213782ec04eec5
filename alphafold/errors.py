"""Errors that are the user's to fix: shown as one clear line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or options.

    The message names the file, the record (when there is one) and the problem, e.g.
    ``UserError("queries.fasta", "record 'sp|P69905' is empty")``.
    """

    def __init__(self, where: str | None, problem: str, record: str | None = None):
        self.where = where
        self.record = record
        self.problem = problem
        parts = [p for p in (where, f"record {record!r}" if record else None) if p]
        super().__init__(f"{': '.join(parts)}: {problem}" if parts else problem)

    def __reduce__(self):
        # Exception pickles as cls(*self.args), which is cls(message): rebuild from the parts instead, so a
        # UserError raised in a Ray worker or a spawned rank reaches the driver as itself
        return type(self), (self.where, self.problem, self.record)
