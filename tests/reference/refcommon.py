"""Shared pieces of the reference harness. Runs INSIDE the reference venv (DeepMind's JAX model).

Never import this from the project's tests: it imports DeepMind's `alphafold` package, whose import name
collides with ours. `make_fixtures.sh` runs it with a cwd outside the repository and without PYTHONPATH.

What lives here: the DeepMind config for a preset and block counts (with the traps of REFERENCE.md
handled), random parameters in DeepMind's layout perturbed so that no tensor is constant, and a
deterministic .npz writer (numpy's own stamps the current time into the zip, so two runs would differ).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

# Processed features used by the model when a template-less preset runs: none beyond this harness's input.
MONOMER_PRESETS = tuple(f"model_{i}" for i in range(1, 6)) + tuple(f"model_{i}_ptm" for i in range(1, 6))

# Triangle multiplications whose projections DeepMind's monomer files keep UNFUSED, while ColabFold's
# config fuses them (REFERENCE.md, "The params layout").
_TRI_MULT = ("triangle_multiplication_outgoing", "triangle_multiplication_incoming")


def reference_config(
    preset: str,
    *,
    num_recycle: int,
    evoformer_blocks: int | None = None,
    extra_msa_blocks: int | None = None,
    template_blocks: int | None = None,
    max_msa_clusters: int = 8,
    max_extra_msa: int = 8,
    zero_init: bool = True,
):
    """DeepMind's model config for `preset`, set up for a float32 reference run.

    Block counts of None keep the preset's full size (48 Evoformer, 4 extra-MSA, 2 template pair blocks).
    `max_msa_clusters` is the number of MSA clusters the model sees: for template presets DeepMind
    subtracts `max_templates` from the configured value, so it is added back here.
    """
    from alphafold.model import config as af_config

    if preset not in MONOMER_PRESETS:
        raise ValueError(f"unknown monomer preset {preset!r}; expected one of {MONOMER_PRESETS}")
    cfg = af_config.model_config(preset)
    model = cfg.model
    evo = model.embeddings_and_evoformer
    gc = model.global_config
    # Trap 1: ColabFold computes in bfloat16 by default.
    gc.bfloat16 = False
    gc.bfloat16_output = False
    gc.zero_init = zero_init
    gc.use_remat = False
    # Monomer parameter files are unfused: two separate projections and gates per triangle multiplication.
    for name in _TRI_MULT:
        evo.evoformer[name].fuse_projection_weights = False
        evo.template.template_pair_stack[name].fuse_projection_weights = False
    if evoformer_blocks is not None:
        evo.evoformer_num_block = evoformer_blocks
    if extra_msa_blocks is not None:
        evo.extra_msa_stack_num_block = extra_msa_blocks
    if template_blocks is not None:
        evo.template.template_pair_stack.num_block = template_blocks
    # Trap 3: keep the PAE head's logits (ColabFold otherwise overwrites them with the error matrix).
    model.calc_extended_ptm = True
    model.use_probs_extended = False
    # Trap 4: processed features carry num_recycle+1 slices; keep the data and model counts equal.
    model.num_recycle = num_recycle
    cfg.data.common.num_recycle = num_recycle
    model.recycle_early_stop_tolerance = 0.0
    cfg.data.common.max_extra_msa = max_extra_msa
    clusters = max_msa_clusters
    if cfg.data.common.reduce_msa_clusters_by_max_templates:
        clusters += cfg.data.eval.max_templates
    cfg.data.eval.max_msa_clusters = clusters
    return cfg


def forward_fn(model_config):
    """The haiku forward function of one recycling iteration (ColabFold's `AlphaFold_noE`).

    The batch holds one recycle's slice of the processed features plus `prev` (the recycling inputs);
    the result holds every head, the representations and the next `prev`.
    """
    from alphafold.model import modules

    def forward(batch):
        model = modules.AlphaFold_noE(model_config)
        return model(batch, is_training=False, return_representations=True)

    return forward


# The Linear that reads the template torsion-angle features [T, L, 57] (EmbeddingsAndEvoformer).
TEMPLATE_SINGLE_EMBEDDING = "template_single_embedding"


def forward_fn_with_template_features(model_config):
    """`forward_fn`, returning also the template features the model fed to its template MSA rows.

    The result is `(result, features)`: `features` is the input of DeepMind's `template_single_embedding`
    Linear, [T, L, 57] (aatype one-hot 22, torsion sin/cos 14, alternative sin/cos 14, torsion mask 7),
    read by a haiku method interceptor without changing the computation; None when the model has no
    template torsion embedding.
    """
    import haiku as hk

    forward = forward_fn(model_config)

    def forward_capturing(batch):
        seen = []

        def interceptor(method, args, kwargs, context):
            if (context.method_name == "__call__"
                    and context.module.module_name.endswith("/" + TEMPLATE_SINGLE_EMBEDDING)):
                seen.append(args[0] if args else kwargs["inputs"])
            return method(*args, **kwargs)

        with hk.intercept_methods(interceptor):
            result = forward(batch)
        if len(seen) > 1:
            raise RuntimeError(f"{TEMPLATE_SINGLE_EMBEDDING} was called {len(seen)} times in one pass")
        return result, (seen[0] if seen else None)

    return forward_capturing


def template_torsion_fn(model_config):
    """DeepMind's template torsion angles, jitted, computed as its EmbeddingsAndEvoformer computes them.

    `fn(template_aatype [T, L], template_all_atom_positions [T, L, 37, 3], template_all_atom_masks
    [T, L, 37])` -> `atom37_to_torsion_angles`' dict (`torsion_angles_sin_cos` [T, L, 7, 2],
    `alt_torsion_angles_sin_cos`, `torsion_angles_mask` [T, L, 7]) with the model's
    `placeholder_for_undefined = not global_config.zero_init`.

    Undefined (mask 0) angles are not defined by geometry: the pre-omega angle of a residue without an
    aligned predecessor is Gram-Schmidt of two antiparallel vectors, float32 rounding noise that XLA's
    fusion decides, and the model feeds it to the template rows unmasked. Their values are therefore
    saved with the fixture rather than recomputed elsewhere.
    """
    import jax

    from alphafold.model import all_atom

    placeholder = not model_config.global_config.zero_init

    def torsions(aatype, pos, mask):
        return all_atom.atom37_to_torsion_angles(
            aatype=aatype, all_atom_pos=pos, all_atom_mask=mask, placeholder_for_undefined=placeholder)

    return jax.jit(torsions)


def check_template_torsions(torsions: Mapping[str, np.ndarray], features: np.ndarray) -> None:
    """Raise unless `torsions` are bit for bit the torsion channels of the model's template features."""
    if features.ndim != 3 or features.shape[-1] != 57:
        raise RuntimeError(f"template features of shape {features.shape}, expected [T, L, 57]")
    num_templ, num_res = features.shape[:2]
    expected = {
        "torsion_angles_sin_cos": features[..., 22:36].reshape(num_templ, num_res, 7, 2),
        "alt_torsion_angles_sin_cos": features[..., 36:50].reshape(num_templ, num_res, 7, 2),
        "torsion_angles_mask": features[..., 50:57],
    }
    for key, want in expected.items():
        got = np.asarray(torsions[key], np.float32)
        if got.shape != want.shape or not np.array_equal(got, want):
            diff = np.abs(got - want).max() if got.shape == want.shape else "shape"
            raise RuntimeError(f"template {key}: the jitted atom37_to_torsion_angles differs from what the "
                               f"model used (max |diff| {diff})")


def _key_rng(seed: int, key: str, *extra: int) -> np.random.Generator:
    """A generator for one tensor (one block) that depends only on (seed, key, extra), never on order."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), *extra])


def param_specs(model_config, batch: Mapping[str, np.ndarray]) -> dict[str, tuple]:
    """Every parameter of the model: key -> (shape, per-block shape, haiku initializer), shapes only.

    Traces haiku's init under `jax.eval_shape` (no memory, no compile) with a creator that records the
    initializer each parameter asked for. For a layer-stacked parameter (Evoformer, extra-MSA and
    template pair blocks) `shape` has the leading block axis and the per-block shape does not.
    """
    import haiku as hk
    import jax
    import jax.numpy as jnp

    inits = {}

    def creator(next_creator, shape, dtype, init, context):
        module, name = context.full_name.rsplit("/", 1)
        init0 = context.original_init
        if isinstance(getattr(init0, "stddev", None), jax.core.Tracer):
            # The attention's pair-bias weights compute their stddev inside the trace as
            # 1/sqrt(c_z), c_z = the first axis of the weight (modules.py, MSARowAttentionWithPairBias
            # and TriangleAttention): the same value, as a number.
            if name != "feat_2d_weights":
                raise TypeError(f"{context.full_name}: initializer with a traced stddev")
            init0 = hk.initializers.RandomNormal(stddev=float(1.0 / np.sqrt(context.original_shape[0])))
        inits[f"{module}//{name}"] = (tuple(context.original_shape), init0)
        # Creators run outermost first: hand on a free initializer so layer_stack still adds its axis.
        return next_creator(shape, dtype, jnp.zeros)

    forward = forward_fn(model_config)

    def recording_forward(b):
        with hk.custom_creator(creator):
            return forward(b)

    shapes = jax.eval_shape(hk.transform(recording_forward).init, jax.random.PRNGKey(0), dict(batch))
    out = {}
    for module, params in shapes.items():
        for name, sd in params.items():
            key = f"{module}//{name}"
            if sd.dtype != jnp.float32:
                raise TypeError(f"{key}: dtype {sd.dtype}, expected float32")
            block_shape, init = inits[key]
            out[key] = (tuple(sd.shape), block_shape, init)
    return out


def _fans(shape: tuple[int, ...], fan_in_axes) -> tuple[float, float]:
    """Haiku's fan computation (VarianceScaling) for one block's weight shape."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    if fan_in_axes is not None:
        fan_in = np.prod([shape[i] for i in fan_in_axes])
        fan_out = np.prod([s for i, s in enumerate(shape) if i not in fan_in_axes])
        return float(fan_in), float(fan_out)
    receptive = float(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng: np.random.Generator, shape, lower: float, upper: float) -> np.ndarray:
    """Standard normal restricted to [lower, upper] by resampling the values outside."""
    x = rng.standard_normal(shape)
    bad = (x < lower) | (x > upper)
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = (x < lower) | (x > upper)
    return x


def sample_initializer(init, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Draw one block of a parameter from the distribution of its haiku initializer, with numpy.

    Haiku's own init jit-compiles the whole network (minutes on a busy 2-core machine, a 30 MB HLO);
    the distributions are the same, only the random stream differs.
    """
    import haiku as hk
    import jax.numpy as jnp

    inits = hk.initializers
    if init is jnp.ones:
        return np.ones(shape)
    if init is jnp.zeros:
        return np.zeros(shape)
    if isinstance(init, inits.Constant):
        return np.broadcast_to(np.asarray(init.constant, np.float64), shape).copy()
    if isinstance(init, inits.TruncatedNormal):
        return init.mean + init.stddev * _truncated_normal(rng, shape, init.lower, init.upper)
    if isinstance(init, inits.RandomNormal):
        return init.mean + init.stddev * rng.standard_normal(shape)
    if isinstance(init, inits.RandomUniform):
        return rng.uniform(init.minval, init.maxval, shape)
    if isinstance(init, inits.VarianceScaling):
        fan_in, fan_out = _fans(shape, init.fan_in_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out}.get(init.mode, (fan_in + fan_out) / 2.0)
        scale = init.scale / max(1.0, fan)
        if init.distribution == "truncated_normal":
            # 0.8796... = std of the unit normal truncated to [-2, 2], as in haiku.
            return np.sqrt(scale) / 0.87962566103423978 * _truncated_normal(rng, shape, -2.0, 2.0)
        if init.distribution == "normal":
            return np.sqrt(scale) * rng.standard_normal(shape)
        limit = np.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, shape)
    raise TypeError(f"no numpy sampler for haiku initializer {init!r}")


def init_params(specs: Mapping[str, tuple], seed: int) -> dict[str, np.ndarray]:
    """Sample every parameter from its haiku initializer (zero_init=False config), block by block."""
    out = {}
    for key in sorted(specs):
        shape, block_shape, init = specs[key]
        if shape == block_shape:
            value = sample_initializer(init, block_shape, _key_rng(seed, key, 0))
        else:
            value = np.stack([sample_initializer(init, block_shape, _key_rng(seed, key, 0, i))
                              for i in range(shape[0])])
        out[key] = value.astype(np.float32)
    return out


def _fan_in(key: str, block_shape: tuple[int, ...]) -> int:
    """Input size of a weight block: attention output_w is [heads, head_dim, out], others [in, ...]."""
    name = key.rsplit("//", 1)[1]
    if name == "output_w" and len(block_shape) == 3:
        return block_shape[0] * block_shape[1]
    return block_shape[0] if block_shape else 1


def perturb_params(flat: Mapping[str, np.ndarray], specs: Mapping[str, tuple], seed: int
                   ) -> dict[str, np.ndarray]:
    """Perturb every tensor so that no tensor, and no block of a stacked tensor, is constant.

    Scales become 1+0.1·N, biases and offsets get +0.1·N, gating weights (always zero in DeepMind's
    initialiser) become N(0, 1/fan_in); any other tensor still constant in some block (a zero
    initialiser) also becomes N(0, 1/fan_in). Each tensor's noise depends only on (seed, key).
    """
    out = {}
    for key in sorted(flat):
        x = np.asarray(flat[key], dtype=np.float64)
        shape, block_shape, _ = specs[key]
        stacked = shape != block_shape
        noise = _key_rng(seed, key, 1).standard_normal(x.shape)
        name = key.rsplit("//", 1)[1]
        gaussian = noise / np.sqrt(_fan_in(key, block_shape))
        if name == "scale":
            y = x + 0.1 * noise
        elif name in ("offset", "bias", "b") or name.endswith("_b") or name.endswith("_bias"):
            y = x + 0.1 * noise
        elif name == "gating_w":
            y = gaussian
        else:
            y = x
        blocks = y if stacked else y[None]
        if any(np.ptp(b) == 0 for b in blocks):
            y = gaussian
        out[key] = y.astype(np.float32)
    return out


def random_params(model_config, batch: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Random parameters in DeepMind's flat layout for `model_config` (built with zero_init=False)."""
    if model_config.global_config.zero_init:
        raise ValueError("random parameters need a config with global_config.zero_init=False")
    specs = param_specs(model_config, batch)
    return perturb_params(init_params(specs, seed), specs, seed)


def flatten_params(params: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Haiku's {module: {param: array}} to DeepMind's flat `"<module>//<param>"` keys."""
    return {f"{mod}//{name}": np.asarray(v) for mod, d in params.items() for name, v in d.items()}


def unflatten_params(flat: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, v in flat.items():
        mod, name = key.split("//")
        out.setdefault(mod, {})[name] = v
    return out


def save_npz_deterministic(path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write an .npz that is a pure function of `arrays` (sorted keys, fixed zip timestamps).

    Readable by `numpy.load`; uncompressed like `numpy.savez`.
    """
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            arr = np.asarray(arrays[key])
            if arr.dtype == object:
                raise TypeError(f"{path}: {key} has dtype object; store strings as numpy 'S' arrays")
            buf = io.BytesIO()
            # np.asarray(order="C") keeps 0-d arrays 0-d (np.ascontiguousarray would make them [1]).
            np.lib.format.write_array(buf, np.asarray(arr, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
