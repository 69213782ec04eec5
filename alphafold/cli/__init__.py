"""The `alphafold` command line.

Every module in this package that defines ``register(subparsers)`` contributes one or more subcommands;
``register`` adds a parser and sets ``func`` (a callable taking the parsed namespace and returning an exit
code). Modules are discovered, so a new stage adds a file here and touches nothing else.

User errors (bad input files, bad options) are raised as :class:`alphafold.errors.UserError` and printed
as one line naming the file, record and problem, with exit code 2; no traceback. A command line argparse
refuses (a missing or unknown option, a bad value: see ``argtypes``) is reported the same way.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import signal
import sys

from alphafold import __version__
from alphafold.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is reported like a UserError: one line, exit code 2.

    Subcommand parsers are made with the class of their parent, so every subcommand reports this way.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="alphafold",
        description="AlphaFold2 structure prediction for HPC: features, prediction, outputs, campaigns.",
    )
    parser.add_argument("--version", action="version", version=f"alphafold-hpc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 1
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left (``| head``) is seen here, not at exit
        return code
    except UserError as err:
        print(f"alphafold {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of stdout went away (``alphafold campaign plan | head -n1``): stop quietly, as Unix
        # tools do, with the shell's SIGPIPE status; stdout goes to /dev/null so that the interpreter's
        # flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
