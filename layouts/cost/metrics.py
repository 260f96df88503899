"""The paper's figures of merit, the same for an estimated, compiled or measured time."""

from zoo.config import ModelConfig


def model_flops_utilization(config: ModelConfig, tokens: int, chips: int, peak_flops: float, seconds: float) -> float:
    """MFU as the paper defines it: 2·N_nominal·tokens / (chips·peak·time)."""
    return 2 * config.mfu_params * tokens / (chips * peak_flops * seconds)


def chip_ms_per_token(chips: int, seconds: float, tokens: int) -> float:
    """Cost: chip-milliseconds spent per token processed or generated."""
    return chips * seconds * 1000 / tokens
