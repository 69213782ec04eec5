"""Everything before the network: inputs, MSA and template search, feature processing, feature store."""
