"""Ray runtime: long-lived fold workers, tensor-parallel gangs, the batch driver."""
