"""The `alphafold` command: discovery of subcommands, help, and one-line user errors."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alphafold import cli as cli_pkg
from alphafold.errors import UserError


def test_help_lists_discovered_subcommands(cli):
    proc = cli("--help")
    assert "usage: alphafold" in proc.stdout
    parser = cli_pkg.build_parser()
    subactions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert subactions, "the parser has a subcommand group"
    for name in subactions[0].choices:
        assert name in proc.stdout


def test_no_command_prints_help_and_fails(cli):
    proc = cli(check=False)
    assert proc.returncode == 1
    assert "usage: alphafold" in proc.stdout


def test_user_error_is_one_line_without_traceback(monkeypatch, capsys):
    def boom(args):
        raise UserError("in.fasta", "sequence is empty", record="sp|P1")

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("boom").set_defaults(func=boom)
    monkeypatch.setattr(cli_pkg, "build_parser", lambda: parser)
    assert cli_pkg.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "alphafold boom: error: in.fasta: record 'sp|P1': sequence is empty"
    assert "Traceback" not in err


def test_a_reader_that_leaves_early_ends_the_command_quietly(tmp_path):
    # `alphafold campaign plan | head -n1` (examples/run.sh): head leaves after one line. Here the reader
    # is gone before the command writes anything, so its first write already meets a closed pipe.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "alphafold", "campaign", "plan", f"output_dir={tmp_path}"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300,
            cwd=Path(__file__).resolve().parents[1],
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 141  # 128 + SIGPIPE, what a shell reports for a tool ended by a closed pipe


def test_user_error_survives_pickling():
    # how it travels from a Ray worker or a spawned rank to the driver
    import pickle

    err = pickle.loads(pickle.dumps(UserError("f.a3m", "bad", record="q")))
    assert isinstance(err, UserError) and (err.where, err.problem, err.record) == ("f.a3m", "bad", "q")
    assert str(err) == "f.a3m: record 'q': bad"


@pytest.mark.parametrize("where,record,expected", [
    (None, None, "bad"),
    ("f.a3m", None, "f.a3m: bad"),
    ("f.a3m", "q", "f.a3m: record 'q': bad"),
])
def test_user_error_message(where, record, expected):
    assert str(UserError(where, "bad", record=record)) == expected


def test_predict_batch_workers_plan_auto_chunks_with_the_routing_budget():
    # every actor on a host would otherwise plan with the host's whole free memory
    from alphafold.cli import predict_batch

    parser = argparse.ArgumentParser()
    predict_batch.register(parser.add_subparsers())
    args = parser.parse_args(["predict-batch", "f", "--output-dir", "o", "--params-dir", "p",
                              "--memory-budget-gb", "12.5", "--gpus-per-rank", "1"])
    options = predict_batch.runtime_options(args)
    assert (options.memory_budget_gb, options.chunk_size, options.device) == (12.5, "auto", "cuda")
