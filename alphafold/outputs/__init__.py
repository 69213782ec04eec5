"""Outputs people use: PDB/ModelCIF, scores and PAE JSON, ranking, plots, campaign report, evaluation."""
