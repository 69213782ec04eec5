"""Model factories for fold workers: build the network once per rank, sharded when the group has P > 1."""

from __future__ import annotations

import dataclasses

from alphafold.model.options import RuntimeOptions
from alphafold.parallel.group import ShardGroup


@dataclasses.dataclass(frozen=True)
class PredictorFactory:
    """``factory(group)`` loads ``params_path`` on this rank: a :class:`~alphafold.model.predictor.Predictor`
    for a group of one, a :class:`~alphafold.parallel.predictor.ShardedPredictor` otherwise. On CUDA each rank
    takes the device its group assigned (``group.device``)."""

    params_path: str
    preset: str | None = None
    options: RuntimeOptions | None = None

    def __call__(self, group: ShardGroup):
        from alphafold.model.predictor import Predictor
        from alphafold.parallel.predictor import ShardedPredictor

        options = self.options or RuntimeOptions()
        if group.device.type == "cuda":
            options = dataclasses.replace(options, device=str(group.device))
        if group.size == 1:
            return Predictor.from_params_file(self.params_path, preset=self.preset, options=options)
        return ShardedPredictor.from_params_file(self.params_path, group, self.preset, options)
