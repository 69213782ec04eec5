"""Single-device AlphaFold2 network math (Jumper et al. 2021). Knows nothing of torch.distributed."""
