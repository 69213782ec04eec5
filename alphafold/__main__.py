"""`python -m alphafold` is the same as the `alphafold` console script."""

from alphafold.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
