"""alphafold-hpc: AlphaFold2 (Jumper et al. 2021) in PyTorch, run as a distributed HPC system.

Subpackages:
    model     single-device network math (no torch.distributed)
    params    DeepMind params files: loading, presets, random parameters
    data      input parsing, MSA/template search, feature processing, feature store
    parallel  sharded execution of the network across a process group
    runtime   Ray actors, gangs and the batch driver
    outputs   structure files, scores, ranking, plots, reports
    relax     Amber relaxation (OpenMM)
    cli       the `alphafold` command
"""

__version__ = "0.1.0"
