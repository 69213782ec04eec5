"""Restrained Amber minimisation of a protein chain with OpenMM, the way AlphaFold2 relaxes its models.

Jumper et al. (2021) Suppl. 1.8.6 "Amber relaxation": hydrogens and missing heavy atoms are added with
PDBFixer (pH 7); the structure is minimised in the Amber ff99SB force field (no solvent, no cutoff, bonds to
hydrogen constrained) with harmonic restraints of 10 kcal/mol/Å² holding every heavy atom to its starting
position, until the energy changes by less than the tolerance (2.39 kcal/mol/Å, OpenMM's default);
afterwards the structural violations (:mod:`alphafold.relax.violations`) are checked and, while residues
still violate, those residues are freed from their restraints, hydrogens are placed afresh, and the
minimisation repeats, at most ``max_outer_iterations`` times (AF2 v2.3 uses 3).

A minimisation never hands back a structure with more energy than it was given. OpenMM's minimiser
enforces the hydrogen-bond constraints at its end, which on a badly clashing structure (an untrained
model's: atoms on top of one another) can raise the energy many times over; such an attempt is retried,
and when every attempt ends higher the round keeps its starting positions. (On such a structure repeated
runs reach different minima: OpenMM's CPU threads sum forces in varying order, here and in the hydrogen
placement, and the clashes amplify it.)

The platform is chosen by configuration: ``auto`` takes CUDA when OpenMM has it and CPU otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import time

import numpy as np
import openmm
from openmm import app as openmm_app
from openmm import unit

from alphafold.common import residue_constants as rc
from alphafold.outputs.structure import Chain, to_pdb
from alphafold.relax.violations import find_violations

logger = logging.getLogger(__name__)

ENERGY = unit.kilocalories_per_mole
LENGTH = unit.angstroms


@dataclasses.dataclass(frozen=True)
class RelaxConfig:
    """Relax settings; defaults are AF2 v2.3's (run_alphafold.py and amber_minimize.py).

    stiffness: kcal/mol/Å², restraint spring on heavy atoms. tolerance: kcal/mol/Å, L-BFGS convergence.
    max_iterations: L-BFGS steps per minimisation, 0 = until converged. max_outer_iterations: violation-
    driven rounds. max_attempts: tries of a minimisation that raised (e.g. NaN on a GPU) or ended higher
    than it started. platform: "auto", "CPU", "CUDA", "OpenCL" or "Reference" (the CPU platform's
    threads: every core, or $OPENMM_CPU_THREADS).
    """

    stiffness: float = 10.0
    tolerance: float = 2.39
    max_iterations: int = 0
    max_outer_iterations: int = 3
    max_attempts: int = 3
    platform: str = "auto"
    violation_tolerance_factor: float = 12.0
    clash_overlap_tolerance: float = 1.5


@dataclasses.dataclass(frozen=True)
class RelaxResult:
    chain: Chain  # heavy atoms in atom37 (with the C-terminal OXT that PDBFixer adds)
    pdb: str  # the relaxed structure with hydrogens, B-factors carried over per residue
    metrics: dict


def choose_platform(name: str) -> openmm.Platform:
    available = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    if name == "auto":
        name = "CUDA" if "CUDA" in available else "CPU"
    if name not in available:
        raise ValueError(f"OpenMM platform {name!r} is not available here (have: {', '.join(available)})")
    return openmm.Platform.getPlatformByName(name)


def segment_ends(chain: Chain) -> np.ndarray:
    """Indices of the last residue of each chain segment (a gap in residue numbering ends a segment).

    A gap that would leave a single residue on its own is not split (Amber has no template for a residue
    that is both N- and C-terminal; AF2 drops such chains), so that residue stays bonded across the gap.
    """
    breaks = [int(i) for i in np.flatnonzero(np.diff(chain.residue_number) != 1)]
    ends, start = [], 0
    for i in breaks:
        if i - start >= 1 and chain.num_res - 1 - i >= 2:  # both sides keep at least two residues
            ends.append(i)
            start = i + 1
    return np.array(ends + [chain.num_res - 1])


def _with_terminal_oxygens(chain: Chain, ends: np.ndarray) -> Chain:
    """Place each segment's C-terminal OXT when missing (models rarely predict it), opposite O about the
    CA-C axis.

    Saves PDBFixer's missing-atom pass, which minimises the whole chain once more; the relax minimisation
    settles OXT anyway (it is restrained like every heavy atom, to this position).
    """
    oxt, ca, c, o = (rc.atom_order[a] for a in ("OXT", "CA", "C", "O"))
    positions, mask = chain.atom_positions.copy(), chain.atom_mask.copy()
    for last in ends:
        if mask[last, oxt] > 0.5 or (mask[last, [ca, c, o]] < 0.5).any():
            continue
        p = positions[last]
        u = (p[c] - p[ca]) / np.linalg.norm(p[c] - p[ca])
        v = (p[o] - p[c]) / np.linalg.norm(p[o] - p[c])
        w = 2 * np.dot(v, u) * u - v  # v reflected about the CA-C axis
        positions[last, oxt] = p[c] + 1.25 * w / np.linalg.norm(w)
        mask[last, oxt] = 1.0
    return chain.replace(atom_positions=positions, atom_mask=mask)


def _segmented_pdb(chain: Chain, ends: np.ndarray) -> str:
    """Heavy-atom PDB text with each segment as its own chain (A, B, ...), so OpenMM bonds no gap."""
    ids = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    if len(ends) > len(ids):
        raise ValueError(f"{len(ends)} chain segments: too many gaps to relax")
    lines, start = [], 0
    for k, last in enumerate(ends):
        index = np.arange(start, last + 1)
        segment = Chain(
            aatype=chain.aatype[index],
            atom_positions=chain.atom_positions[index],
            atom_mask=chain.atom_mask[index],
            residue_number=chain.residue_number[index],
            b_factors=np.zeros((len(index), rc.atom_type_num)),
            chain_id=ids[k],
        )
        lines += [line for line in to_pdb(segment).splitlines() if line.startswith(("ATOM", "TER"))]
        start = last + 1
    return "\n".join(lines + ["END"]) + "\n"


def _add_hydrogens(heavy_pdb: str, force_field: openmm_app.ForceField) -> tuple[openmm_app.Topology, list]:
    """Missing heavy atoms and the C-terminal OXT (PDBFixer), then hydrogens at pH 7 (OpenMM's Modeller).

    No residues are added. Hydrogens are placed geometrically and left to the minimisation (PDBFixer's own
    ``addMissingHydrogens`` would minimise them once more first, which costs more than the relax itself).
    """
    import pdbfixer

    fixer = pdbfixer.PDBFixer(pdbfile=io.StringIO(heavy_pdb))
    fixer.missingResidues = {}
    fixer.findMissingAtoms()
    if fixer.missingAtoms or fixer.missingTerminals:
        fixer.addMissingAtoms(seed=0)
    modeller = openmm_app.Modeller(fixer.topology, fixer.positions)
    modeller.addHydrogens(force_field, pH=7.0)
    return modeller.topology, modeller.positions


def _minimize(
    topology,
    positions,
    config: RelaxConfig,
    exclude: set[int],
    platform: openmm.Platform,
    force_field: openmm_app.ForceField,
) -> dict:
    system = force_field.createSystem(topology, constraints=openmm_app.HBonds)
    stiffness = config.stiffness * ENERGY / LENGTH**2
    restraint = openmm.CustomExternalForce("0.5 * k * ((x-x0)^2 + (y-y0)^2 + (z-z0)^2)")
    restraint.addGlobalParameter("k", stiffness.value_in_unit(unit.kilojoules_per_mole / unit.nanometer**2))
    for name in ("x0", "y0", "z0"):
        restraint.addPerParticleParameter(name)
    for atom in topology.atoms():
        if atom.element.symbol != "H" and atom.residue.index not in exclude:
            restraint.addParticle(atom.index, positions[atom.index].value_in_unit(unit.nanometer))
    if restraint.getNumParticles() > 0:
        system.addForce(restraint)
    integrator = openmm.LangevinIntegrator(0, 0.01, 0.0)
    simulation = openmm_app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(positions)
    state = simulation.context.getState(getEnergy=True, getPositions=True)
    start = {
        "einit": state.getPotentialEnergy().value_in_unit(ENERGY),
        "posinit": state.getPositions(asNumpy=True).value_in_unit(LENGTH),
    }
    simulation.minimizeEnergy(
        maxIterations=config.max_iterations, tolerance=config.tolerance * ENERGY / LENGTH
    )
    state = simulation.context.getState(getEnergy=True, getPositions=True)
    return {
        **start,
        "efinal": state.getPotentialEnergy().value_in_unit(ENERGY),
        "pos": state.getPositions(asNumpy=True).value_in_unit(LENGTH),
        "restrained": restraint.getNumParticles(),
    }


def _minimize_round(minimize, attempts: int) -> dict:
    """One round's minimisation, ``minimize()`` tried up to ``attempts`` times: the first attempt that ends
    with a finite energy no higher than its start. An attempt that raised (e.g. NaN on a GPU) or ended
    higher is retried; if none ended lower, the round keeps its start (positions and energy) rather than
    return a worse structure. Raises RuntimeError when every attempt raised."""
    start = None
    for attempt in range(1, attempts + 1):
        try:
            ret = minimize()
        except (openmm.OpenMMException, ValueError) as err:
            logger.warning("minimisation attempt %d/%d failed: %s", attempt, attempts, err)
            continue
        if np.isfinite(ret["efinal"]) and ret["efinal"] <= ret["einit"]:
            return ret
        logger.warning(
            "minimisation attempt %d/%d ended higher than it started (E %.1f -> %.1f kcal/mol)",
            attempt, attempts, ret["einit"], ret["efinal"],
        )
        start = ret
    if start is None:
        raise RuntimeError(f"minimisation failed {attempts} times")
    logger.warning("no minimisation attempt lowered the energy: this round keeps its starting positions")
    return {**start, "efinal": start["einit"], "pos": start["posinit"], "kept_start": True}


def _heavy_chain(topology, positions_a: np.ndarray, template: Chain) -> Chain:
    """Heavy atoms of the OpenMM topology back into atom37, residue by residue in order."""
    residues = list(topology.residues())
    if len(residues) != template.num_res:
        raise RuntimeError(f"relax changed the number of residues: {template.num_res} -> {len(residues)}")
    pos = np.zeros_like(template.atom_positions)
    mask = np.zeros_like(template.atom_mask)
    for i, residue in enumerate(residues):
        for atom in residue.atoms():
            idx = rc.atom_order.get(atom.name)
            if idx is not None and atom.element.symbol != "H":
                pos[i, idx] = positions_a[atom.index]
                mask[i, idx] = 1.0
    b = np.repeat(template.b_factors[:, rc.atom_order["CA"]][:, None], rc.atom_type_num, axis=1) * mask
    return template.replace(atom_positions=pos, atom_mask=mask, b_factors=b)


def _pdb_with_hydrogens(topology, positions_a: np.ndarray, template: Chain, remarks: list[str]) -> str:
    lines = [f"REMARK 250 {r}"[:80] for r in remarks] + ["MODEL        1"]
    serial = 1
    ca_b = template.b_factors[:, rc.atom_order["CA"]]
    for i, residue in enumerate(topology.residues()):
        number = int(template.residue_number[i])
        for atom in residue.atoms():
            x, y, z = positions_a[atom.index]
            symbol = atom.element.symbol
            name = atom.name if len(atom.name) == 4 or len(symbol) == 2 else f" {atom.name}"
            lines.append(
                f"ATOM  {serial:>5} {name:<4} {residue.name:>3} {template.chain_id:>1}{number:>4}    "
                f"{x:>8.3f}{y:>8.3f}{z:>8.3f}{1.0:>6.2f}{ca_b[i]:>6.2f}          {symbol:>2}  "
            )
            serial += 1
    last = list(topology.residues())[-1]
    lines.append(
        f"TER   {serial:>5}      {last.name:>3} {template.chain_id:>1}{int(template.residue_number[-1]):>4}"
    )
    lines += ["ENDMDL", "END"]
    return "\n".join(line.ljust(80) for line in lines) + "\n"


class AmberRelaxer:
    """Callable ``Chain -> RelaxResult``; one instance can relax many chains."""

    def __init__(self, config: RelaxConfig | None = None):
        self.config = config or RelaxConfig()
        self.platform = choose_platform(self.config.platform)
        self.force_field = openmm_app.ForceField("amber99sb.xml")

    def __call__(self, chain: Chain) -> RelaxResult:
        return self.relax(chain)

    def relax(self, chain: Chain, remarks: list[str] | None = None) -> RelaxResult:
        cfg = self.config
        unknown = np.flatnonzero(chain.aatype >= rc.unk_restype_index)
        if unknown.size:
            raise ValueError(
                f"residue(s) {chain.residue_number[unknown].tolist()} are of unknown type: "
                "Amber has no template for them"
            )
        if (chain.atom_mask[:, [rc.atom_order[a] for a in ("N", "CA", "C")]] < 0.5).any():
            bad = np.flatnonzero((chain.atom_mask[:, :3] < 0.5).any(-1))
            raise ValueError(f"residue(s) {chain.residue_number[bad].tolist()} lack backbone N, CA or C")
        started = time.perf_counter()
        ends = segment_ends(chain)
        heavy = _with_terminal_oxygens(chain, ends)
        topology, positions = _add_hydrogens(_segmented_pdb(heavy, ends), self.force_field)
        exclude: set[int] = set()
        energies = []  # [E at the start, E at the end] of each round, kcal/mol
        for iteration in range(1, cfg.max_outer_iterations + 1):
            ret = _minimize_round(
                functools.partial(
                    _minimize, topology, positions, cfg, set(exclude), self.platform, self.force_field
                ),
                cfg.max_attempts,
            )
            energies.append([float(ret["einit"]), float(ret["efinal"])])
            relaxed = _heavy_chain(topology, ret["pos"], chain)
            violations = find_violations(relaxed, cfg.violation_tolerance_factor, cfg.clash_overlap_tolerance)
            logger.info(
                "relax iteration %d: E %.1f -> %.1f kcal/mol, %d restrained atoms, %d violating "
                "residue(s), %d excluded",
                iteration,
                ret["einit"],
                ret["efinal"],
                ret["restrained"],
                violations["num_residue_violations"],
                len(exclude),
            )
            if violations["num_residue_violations"] == 0 or iteration == cfg.max_outer_iterations:
                break
            exclude |= set(violations["residues"].tolist())
            topology, positions = _add_hydrogens(_segmented_pdb(relaxed, ends), self.force_field)
        moved = (chain.atom_mask > 0.5) & (relaxed.atom_mask > 0.5)  # heavy atoms of the input
        squared = ((chain.atom_positions - relaxed.atom_positions) ** 2).sum(-1)[moved]
        metrics = {
            "initial_energy": energies[0][0],
            "final_energy": energies[-1][1],
            "round_energies": energies,
            "iterations": iteration,
            "num_residue_violations": violations["num_residue_violations"],
            "violating_residues": chain.residue_number[violations["residues"]].tolist(),
            "excluded_residues": sorted(int(chain.residue_number[i]) for i in exclude),
            "rmsd": float(np.sqrt(squared.mean())),  # heavy atoms, input to output
            "platform": self.platform.getName(),
            "seconds": time.perf_counter() - started,
        }
        return RelaxResult(
            chain=relaxed,
            pdb=_pdb_with_hydrogens(topology, ret["pos"], chain, remarks or []),
            metrics=metrics,
        )
