"""Amber relaxation of predicted structures with OpenMM, as AlphaFold2 does it."""
