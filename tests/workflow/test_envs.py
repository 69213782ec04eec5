"""The conda environments of the rules (envs/*.yaml), checked against the real files.

No conda channel is reachable from the test machines, so the environments cannot be built here. What can
be checked is derived from the repository itself, not from a list kept in this test:

- every envs/*.yaml is a valid environment file (channels, dependencies, one pip section, python pinned);
- every rule Snakemake lists that runs something has a ``conda:`` pointing at an existing env;
- every ``alphafold`` subcommand a rule runs (its shell command, or the stage commands its batch script
  runs) imports, transitively, only modules its env provides: the standard library, the package (``-e``
  install of this checkout) and third-party distributions the env lists or declares through
  pyproject.toml's dependencies (a module only some other package happens to pull in does not count);
  every executable those modules call is provided by a conda package of the env;
- version pins agree: the env's python with ``requires-python``, its pip pins with pyproject.toml and
  constraints.txt (torch==2.13.0 ...), its conda versions with pyproject's specifiers.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import pkgutil
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT
from tests.workflow.conftest import run_snakemake

ENVS = ROOT / "envs"
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
# Which conda package provides an executable the code calls (bioconda names). An executable found in
# the code but missing here fails the test: add its package.
EXECUTABLE_PACKAGES = {
    "hhblits": "hhsuite", "hhsearch": "hhsuite", "hhmake": "hhsuite", "ffindex_build": "hhsuite",
    "cstranslate": "hhsuite", "cstranslate_mpi": "hhsuite", "mmseqs": "mmseqs2", "jackhmmer": "hmmer",
    "hmmsearch": "hmmer", "hmmbuild": "hmmer", "kalign": "kalign3",
}
CONDA_SPEC = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(?:(==|=|>=|<=|>|<)\s*([0-9][\w.*]*))?$")


# ---- the files ----------------------------------------------------------------------------------------

def load_env(path: Path) -> dict:
    """An env file as {channels, conda: {name: version or None}, pip: [requirement lines]}."""
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and set(env) <= {"name", "channels", "dependencies"}, path
    assert env.get("channels") and all(isinstance(c, str) for c in env["channels"]), f"{path}: channels"
    conda, pip = {}, None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"} and pip is None, f"{path}: one `pip:` section, got {dep}"
            pip = list(dep["pip"])
            continue
        match = CONDA_SPEC.match(dep)
        assert match, f"{path}: {dep!r} is not a conda package spec"
        conda[match[1].lower()] = match[3]
    assert pip is None or "pip" in conda, f"{path}: a pip section needs `pip` among the dependencies"
    return {"channels": env["channels"], "conda": conda, "pip": pip or []}


def pip_requirements(env: dict) -> tuple[dict[str, Requirement], list[str]]:
    """The env's pip requirements by canonical name, and its editable install paths."""
    reqs, editable = {}, []
    for line in env["pip"]:
        if line.startswith("-e "):
            editable.append(line[3:].strip())
        else:
            req = Requirement(line)
            reqs[canonicalize_name(req.name)] = req
    return reqs, editable


@cache
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@cache
def project_requirements() -> dict[str, Requirement]:
    reqs = (Requirement(r) for r in pyproject()["dependencies"])
    return {canonicalize_name(r.name): r for r in reqs}


@cache
def constraints() -> dict[str, Requirement]:
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    return {canonicalize_name(Requirement(ln).name): Requirement(ln) for ln in lines if ln}


def parse_rules() -> dict[str, dict]:
    """Each rule of the Snakefile and workflow/rules/*.smk: conda env, shell text, script, stage param."""
    rules = {}
    for path in RULE_FILES:
        text = path.read_text()
        for m in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|[ \t]*\n)*)", text, re.M):
            body = m.group(2)
            conda = re.search(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", body, re.M)
            script = re.search(r"^\s+script:\s*\n\s+\"([^\"]+)\"", body, re.M)
            stage = re.search(r"^\s+stage=\"(\w+)\"", body, re.M)
            rules[m.group(1)] = {
                "file": path,
                "conda": (path.parent / conda[1]).resolve() if conda else None,
                "script": (path.parent / script[1]).resolve() if script else None,
                "shell": re.findall(r"python -m alphafold ([\w-]+)", body),
                "stage": stage[1] if stage else None,
                "runs": bool(re.search(r"^\s+(shell|script|run):", body, re.M)),
            }
    return rules


def subcommand_modules() -> dict[str, str]:
    """`alphafold` subcommand -> the module of alphafold.cli that registers it (the CLI's own discovery)."""
    import alphafold.cli as cli

    out = {}
    for info in pkgutil.iter_modules(cli.__path__):
        module = importlib.import_module(f"alphafold.cli.{info.name}")
        if hasattr(module, "register"):
            sub = argparse.ArgumentParser().add_subparsers()
            module.register(sub)
            out.update({name: module.__name__ for name in sub.choices})
    return out


def rule_commands(name: str, rule: dict) -> list[str]:
    """The `alphafold` subcommands a rule runs: its shell command's, or its batch script's stage's."""
    from alphafold.campaign import jobs, stages

    if rule["script"] is None:
        return rule["shell"]
    if rule["stage"] is not None:
        return list(stages.STAGE_COMMANDS[rule["stage"]])
    assert name == "summary", f"rule {name}: a script rule without a stage param; say what it runs here"
    return list(jobs.SUMMARY_COMMANDS)


# ---- what code imports and calls ----------------------------------------------------------------------

def _module_file(name: str) -> Path | None:
    """The source of an alphafold module or package, found in the checkout without importing it (an
    import would run the package's heavy imports: torch, Ray)."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(tree: ast.AST, package: str) -> set[str]:
    """Every module a file imports, at top level or inside functions (lazy imports run too)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            # `from alphafold.data import templates` imports the module alphafold.data.templates
            names.update(f"{base}.{alias.name}" for alias in node.names
                         if base.startswith("alphafold") and _is_submodule(base, alias.name))
    return names


def _is_submodule(base: str, name: str) -> bool:
    return _module_file(f"{base}.{name}") is not None


def executables(tree: ast.AST) -> set[str]:
    """Programs a file runs: `shutil.which("x")`, a `binary="x"` default, `subprocess.run(["x", ...])`."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arguments):
            pairs = [*zip(node.args[len(node.args) - len(node.defaults):], node.defaults),
                     *zip(node.kwonlyargs, node.kw_defaults)]
            for arg, default in pairs:
                if arg.arg == "binary" and isinstance(default, ast.Constant):
                    found.add(default.value)
        elif isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            first = node.args[0]
            if func.endswith("which") and isinstance(first, ast.Constant):
                found.add(first.value)
            elif func.endswith("which") and isinstance(first, ast.Name):
                # `for tool in ("a", "b"): shutil.which(tool)`: the loop's literal names
                for loop in ast.walk(tree):
                    if (isinstance(loop, ast.For) and isinstance(loop.target, ast.Name)
                            and loop.target.id == first.id and isinstance(loop.iter, ast.Tuple | ast.List)):
                        found.update(e.value for e in loop.iter.elts if isinstance(e, ast.Constant))
            elif func in ("subprocess.run", "subprocess.Popen") and isinstance(first, ast.List) \
                    and first.elts and isinstance(first.elts[0], ast.Constant):
                found.add(first.elts[0].value)
    return {e for e in found if isinstance(e, str)}


@cache
def closure(start: str) -> tuple[frozenset[str], frozenset[str]]:
    """(third-party top-level modules, executables) of a module or a script file and all the
    alphafold modules it imports, transitively (parent packages included: importing runs them)."""
    seen: set[str] = set()
    third, programs = set(), set()
    todo = [start]
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        path = Path(item) if item.endswith(".py") else _module_file(item)
        if path is None:
            continue
        tree = ast.parse(path.read_text())
        package = item if path.name == "__init__.py" else item.rpartition(".")[0]
        programs |= executables(tree)
        for name in _imports(tree, package):
            top = name.split(".")[0]
            if top == "alphafold":
                parts = name.split(".")
                todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            elif top and top not in sys.stdlib_module_names:
                third.add(top)
    return frozenset(third), frozenset(programs)


# ---- the tests ------------------------------------------------------------------------------------------

ENV_FILES = sorted(ENVS.glob("*.yaml"))


@pytest.mark.parametrize("path", ENV_FILES, ids=[p.stem for p in ENV_FILES])
def test_env_file_is_valid_and_pins_agree_with_the_project(path):
    env = load_env(path)
    python = env["conda"].get("python")
    assert python is not None, f"{path.name}: python must be pinned"
    assert Version(python) in Requirement(f"python{pyproject()['requires-python']}").specifier, (
        f"{path.name}: python={python} but pyproject.toml requires {pyproject()['requires-python']}")
    reqs, editable = pip_requirements(env)
    # Every rule runs `python -m alphafold`: the env installs this checkout.
    assert [(ENVS / e).resolve() for e in editable] == [ROOT], f"{path.name}: needs `-e ../` (this checkout)"
    for name, req in reqs.items():
        project = project_requirements().get(name)
        assert project is not None, f"{path.name}: pip {req} is not a dependency in pyproject.toml"
        pinned = [s.version for s in req.specifier if s.operator == "=="]
        for version in pinned:
            assert version in project.specifier, f"{path.name}: {req} contradicts pyproject's {project}"
            if name in constraints():
                assert str(req.specifier) == str(constraints()[name].specifier), (
                    f"{path.name}: {req} differs from constraints.txt's {constraints()[name]}")
    for name, version in env["conda"].items():
        project = project_requirements().get(canonicalize_name(name))
        if project is not None and version is not None:
            assert Version(version.rstrip(".*")) in project.specifier, (
                f"{path.name}: conda {name}={version} contradicts pyproject's {project}")
        locked = constraints().get(canonicalize_name(name))
        if locked is not None and version is not None:
            # conda's `name=8.6` is 8.6.*: the locked pip version must be in that series
            (exact,) = [s.version for s in locked.specifier if s.operator == "=="]
            series = version.rstrip(".*").split(".")
            assert exact.split(".")[: len(series)] == series, (
                f"{path.name}: conda {name}={version} disagrees with constraints.txt's {locked}")
    # Packages pinned in constraints.txt that the env names must carry exactly that pin.
    for name, req in constraints().items():
        if name in reqs:
            assert reqs[name].specifier == req.specifier, f"{path.name}: {reqs[name]} vs constraints {req}"


def test_torch_is_pinned_everywhere_to_the_project_pin():
    # The one pin whose drift costs most (a multi-GB CUDA build): every env states it, equal to pyproject's
    # and constraints.txt's.
    project_pin = str(project_requirements()["torch"].specifier)
    assert project_pin == str(constraints()["torch"].specifier) and project_pin.startswith("==")
    for path in ENV_FILES:
        reqs, _ = pip_requirements(load_env(path))
        assert "torch" in reqs and str(reqs["torch"].specifier) == project_pin, path.name


@pytest.fixture(scope="module")
def listed_rules(tmp_path_factory):
    """The rules Snakemake itself finds in the workflow (so no rule escapes the parser below)."""
    out = tmp_path_factory.mktemp("envs_rules")
    proc = run_snakemake("--list-rules", "--config", f"output_dir={out}", timeout=300)
    return {line.strip() for line in proc.stdout.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}


def test_every_rule_that_runs_something_has_an_existing_env(listed_rules):
    rules = parse_rules()
    assert set(rules) == listed_rules, f"rules parsed {sorted(rules)} vs Snakemake's {sorted(listed_rules)}"
    runners = {name: r for name, r in rules.items() if r["runs"]}
    assert {"msa_search", "template_search", "features", "predict", "outputs"} <= set(runners)
    for name, rule in runners.items():
        assert rule["conda"] is not None, f"rule {name} ({rule['file'].name}) has no conda: directive"
        assert rule["conda"].is_file() and rule["conda"].parent == ENVS, f"rule {name}: {rule['conda']}"
    # One env per rule family: the three CPU search/feature rules share the features env.
    assert len({runners[n]["conda"] for n in ("msa_search", "template_search", "features")}) == 1


def test_each_rule_env_covers_what_its_commands_import_and_run():
    rules = {n: r for n, r in parse_rules().items() if r["runs"]}
    modules = subcommand_modules()
    installed = importlib.metadata.packages_distributions()
    checked = 0
    for name, rule in rules.items():
        env = load_env(rule["conda"])
        reqs, editable = pip_requirements(env)
        provided = set(reqs) | {canonicalize_name(c) for c in env["conda"]}
        if editable:  # pip installs the project's declared dependencies with it
            provided |= set(project_requirements())
        commands = rule_commands(name, rule)
        assert commands, f"rule {name} runs no `alphafold` subcommand the test can see"
        starts = [modules[c] for c in commands] + ([str(rule["script"])] if rule["script"] else [])
        for start in starts:
            third, programs = closure(start)
            for top in sorted(third):
                dists = {canonicalize_name(d) for d in installed.get(top, [])}
                assert dists, f"rule {name}: {start} imports {top}, which no installed distribution provides"
                assert dists & provided, (
                    f"rule {name}: {start} imports {top} ({', '.join(sorted(dists))}), which "
                    f"{rule['conda'].name} does not provide")
            for program in sorted(programs):
                assert program in EXECUTABLE_PACKAGES, f"{start} runs {program}: add its conda package"
                assert EXECUTABLE_PACKAGES[program] in env["conda"], (
                    f"rule {name}: {start} runs {program}; {rule['conda'].name} lacks conda package "
                    f"{EXECUTABLE_PACKAGES[program]}")
            checked += 1
    assert checked >= len(rules)


def test_the_closure_sees_lazy_imports_and_programs():
    # The import walk must follow imports inside functions (the CLI imports heavy modules when it runs).
    third, programs = closure("alphafold.cli.features")
    assert {"numpy", "pyhmmer"} <= third
    assert {"hhblits", "mmseqs", "hhsearch"} <= programs
    third, _ = closure("alphafold.cli.predict_batch")
    assert {"ray", "torch"} <= third
