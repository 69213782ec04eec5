"""Sharded execution of the network across an explicitly passed process group (gloo on CPU, NCCL on GPU)."""
