"""Shared argument types of the `alphafold` subcommands (alphafold/cli/argtypes.py): negative counts,
sizes and tolerances are refused while the command line is parsed, with argparse's error naming the
option and the value, exit code 2."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from alphafold import cli as cli_pkg
from alphafold.cli import argtypes


def test_negative_max_templates_is_rejected_through_the_cli(cli, tmp_path):
    out = tmp_path / "out"
    proc = cli("features", str(tmp_path / "query.fasta"), "--output-dir", out, "--max-templates", "-1",
               check=False)
    assert proc.returncode == 2
    # one line, like a UserError: no usage dump, no traceback, no work started
    assert proc.stderr.splitlines() == [
        "alphafold features: error: argument --max-templates: expected an integer >= 0, got '-1' "
        "(see 'alphafold features --help')"
    ]
    assert not out.exists()


def test_any_bad_command_line_is_one_line(cli):
    proc = cli("params", "random", "--preset", "model_1", check=False)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "alphafold params random: error: the following arguments are required: --out "
        "(see 'alphafold params random --help')"
    ]


def _subparser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


# (subcommand path, required arguments, option, bad value, expected message)
REJECTED = [
    (("features",), ["q.fasta", "--output-dir", "o"], "--cpus", "0", "an integer >= 1, got '0'"),
    (("features",), ["q.fasta", "--output-dir", "o"], "--jackhmmer-iterations", "0", ">= 1, got '0'"),
    (("features",), ["q.fasta", "--output-dir", "o"], "--uniref-max-hits", "-5", ">= 1, got '-5'"),
    (("features",), ["q.fasta", "--output-dir", "o"], "--mgnify-max-hits", "many", ">= 1, got 'many'"),
    (("params", "random"), ["--preset", "model_1", "--out", "p.npz"], "--evoformer-blocks", "0", ">= 1"),
    (("params", "random"), ["--preset", "model_1", "--out", "p.npz"], "--extra-msa-blocks", "-1", ">= 1"),
    (("params", "random"), ["--preset", "model_1", "--out", "p.npz"], "--template-blocks", "0", ">= 1"),
    (("params", "random"), ["--preset", "model_1", "--out", "p.npz"], "--seed", "-3", ">= 0, got '-3'"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--tp", "0", ">= 1"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--max-tp", "-2", ">= 1"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--memory-budget-gb", "0", "> 0"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--num-cpus", "0", ">= 1"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--num-actors", "0", ">= 1"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--cpus-per-rank", "-1", ">= 0"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--gpus-per-rank", "nan", ">= 0"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--num-recycle", "-1", ">= 0"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--chunk-size", "0",
     "a positive integer, 'auto' or 'none', got '0'"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--max-attempts", "0", ">= 1"),
    (("predict-batch",), ["f", "--output-dir", "o", "--params-dir", "p"], "--timeout", "-1", "> 0"),
    (("prepare-targets",), ["q.fasta", "--output", "t.tsv"], "--single-device-max-length", "0", ">= 1"),
    (("process-features",), ["r.npz", "--preset", "model_1", "--out", "p.npz"], "--num-recycle", "-1",
     ">= 0, got '-1'"),
    (("process-features",), ["r.npz", "--preset", "model_1", "--out", "p.npz"], "--seed", "-1", ">= 0"),
    (("process-features",), ["r.npz", "--preset", "model_1", "--out", "p.npz"], "--max-msa-clusters", "0",
     ">= 1"),
    (("process-features",), ["r.npz", "--preset", "model_1", "--out", "p.npz"], "--max-extra-msa", "-1",
     ">= 0"),
    (("process-features",), ["r.npz", "--preset", "model_1", "--out", "p.npz"], "--max-templates", "-1",
     ">= 0"),
    (("relax",), ["in.pdb", "--output", "o.pdb"], "--stiffness", "-0.5", ">= 0, got '-0.5'"),
    (("relax",), ["in.pdb", "--output", "o.pdb"], "--max-outer-iterations", "0", ">= 1"),
    (("run-features",), ["--params", "p", "--features", "f", "--output", "o"], "--num-recycle", "-1", ">= 0"),
    (("run-features",), ["--params", "p", "--features", "f", "--output", "o"], "--recycle-tolerance",
     "-0.001", ">= 0"),
    (("run-features",), ["--params", "p", "--features", "f", "--output", "o"], "--tp", "0", ">= 1"),
    (("run-features",), ["--params", "p", "--features", "f", "--output", "o"], "--chunk-size", "-4",
     "'auto' or 'none'"),
    (("campaign", "status"), ["out"], "--watch", "0", "> 0, got '0'"),
]


@pytest.fixture(scope="module")
def parser():
    return cli_pkg.build_parser()


@pytest.mark.parametrize("path,required,option,bad,message", REJECTED, ids=lambda v: v if isinstance(v, str)
                         and v.startswith("--") else None)
def test_every_subcommand_rejects_bad_counts_at_parse_time(parser, capsys, path, required, option, bad,
                                                           message):
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*path, *required, option, bad])
    assert exc.value.code == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith(f"alphafold {' '.join(path)}: error: argument {option}: expected a")
    assert message in err


def test_validated_options_keep_their_defaults_and_accept_boundaries(parser):
    args = parser.parse_args(["features", "q.fasta", "--output-dir", "o", "--max-templates", "0"])
    assert args.max_templates == 0 and args.cpus >= 1 and args.jackhmmer_iterations == 1
    args = parser.parse_args(["predict-batch", "f", "--output-dir", "o", "--params-dir", "p",
                              "--gpus-per-rank", "0", "--chunk-size", "none"])
    assert args.chunk_size is None and args.gpus_per_rank == 0.0 and args.timeout == 600.0
    # string defaults go through the type too
    args = parser.parse_args(["predict-batch", "f", "--output-dir", "o", "--params-dir", "p"])
    assert args.chunk_size == "auto"
    args = _subparser(parser, "run-features").parse_args(
        ["--params", "p", "--features", "f", "--output", "o", "--num-recycle", "0", "--chunk-size", "17"])
    assert args.num_recycle == 0 and args.chunk_size == 17


@pytest.mark.parametrize("func,good,bad", [
    (argtypes.non_negative_int, {"0": 0, "12": 12, " 3 ": 3}, ["-1", "1.5", "x", ""]),
    (argtypes.positive_int, {"1": 1, "19": 19}, ["0", "-7", "2e3"]),
    (argtypes.non_negative_float, {"0": 0.0, "0.25": 0.25, "1e-3": 1e-3}, ["-0.1", "nan", "inf", "x"]),
    (argtypes.positive_float, {"14": 14.0, "1e-9": 1e-9}, ["0", "-0", "-inf", "NaN"]),
    (argtypes.chunk_size, {"auto": "auto", "AUTO": "auto", "none": None, "None": None, "8": 8},
     ["0", "-1", "big", "4.0"]),
])
def test_argtypes_values(func, good, bad):
    for text, value in good.items():
        assert func(text) == value and type(func(text)) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace(".", r"\.")):
            func(text)


def test_argtypes_is_not_a_subcommand_and_imports_nothing_heavy(parser):
    assert not hasattr(argtypes, "register")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "argtypes" not in sub.choices
    code = ("import sys; import alphafold.cli.argtypes; "
            "print(sorted(m for m in ('torch', 'numpy', 'ray', 'yaml') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
