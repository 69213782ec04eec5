"""Architecture configuration of the AlphaFold2 monomer network, as frozen dataclasses.

Sizes follow Jumper et al. (2021) Suppl. Table and DeepMind's v2.3 config; names use the paper's symbols
(`c_m`, `c_z`, `c_s`, ...). Only inference-relevant fields are kept (no dropout rates, no loss weights).
Block counts are defaults here; the loader reads the true counts off the params file, so a reduced file
with the same keys is a smaller model of the same architecture.

Presets (`alphafold.params.presets`) are written as diffs over :data:`BASE` with :func:`dataclasses.replace`.
Runtime choices (chunk sizes, dtype, device, recycles) are not architecture: see
:mod:`alphafold.model.options`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EvoformerConfig:
    """Evoformer stack, Suppl. Alg. 6 (and the per-block sizes shared by the extra-MSA stack)."""

    num_blocks: int = 48
    c_m: int = 256  # MSA channels
    c_z: int = 128  # pair channels
    c_s: int = 384  # single channels (projected from the first MSA row)
    num_heads_msa: int = 8  # MSA row / column attention heads (head dim c_m / heads = 32)
    num_heads_pair: int = 4  # triangle attention heads (head dim c_z / heads = 32)
    c_hidden_outer: int = 32  # outer product mean channels, Alg. 10
    c_hidden_tri_mul: int = 128  # triangle multiplication channels, Alg. 11/12
    transition_factor: int = 4  # MSA / pair transition expansion, Alg. 9/15


@dataclass(frozen=True)
class ExtraMsaConfig:
    """Extra-MSA stack, Suppl. Alg. 18 (uses global column attention, Alg. 19)."""

    num_blocks: int = 4
    c_e: int = 64  # extra-MSA channels
    num_heads_row: int = 8  # row attention heads (head dim 8)
    num_heads_column: int = 8  # global column attention heads (head dim 8)


@dataclass(frozen=True)
class TemplateConfig:
    """Template embedding, Suppl. Alg. 16 (pair stack + pointwise attention) and 17 (torsion features)."""

    enabled: bool = False
    embed_torsion_angles: bool = False
    num_blocks: int = 2  # template pair stack blocks
    c_t: int = 64  # template pair channels
    num_heads_tri: int = 4  # template triangle attention heads (head dim 16)
    c_hidden_tri_mul: int = 64
    transition_factor: int = 2
    num_heads_pointwise: int = 4  # template pointwise attention heads (key/value dim 64 in total)
    c_hidden_pointwise: int = 64
    max_templates: int = 4
    dgram_min_bin: float = 3.25
    dgram_max_bin: float = 50.75
    dgram_num_bins: int = 39
    use_template_unit_vector: bool = False


@dataclass(frozen=True)
class StructureModuleConfig:
    """Structure module, Suppl. Alg. 20 (IPA Alg. 22, backbone update Alg. 23, torsions Alg. 20 l.11-14)."""

    num_layers: int = 8  # one weight set shared by all layers
    c_s: int = 384
    c_z: int = 128
    num_heads: int = 12
    num_scalar_qk: int = 16
    num_point_qk: int = 4
    num_scalar_v: int = 16
    num_point_v: int = 8
    num_transition_layers: int = 3
    position_scale: float = 10.0  # nm-style unit: translations are predicted in units of 10 Å
    c_resnet: int = 128  # AngleResnet channels
    num_resnet_blocks: int = 2


@dataclass(frozen=True)
class HeadsConfig:
    """Output heads: pLDDT (Alg. 29), distogram, masked MSA, experimentally resolved, PAE / pTM."""

    distogram_first_break: float = 2.3125
    distogram_last_break: float = 21.6875
    distogram_num_bins: int = 64
    plddt_num_bins: int = 50
    plddt_num_channels: int = 128
    masked_msa_num_output: int = 23
    use_predicted_aligned_error: bool = False  # True for the *_ptm presets
    pae_max_error_bin: float = 31.0
    pae_num_bins: int = 64


@dataclass(frozen=True)
class ModelConfig:
    """The whole monomer network (Suppl. Alg. 2 "Inference")."""

    evoformer: EvoformerConfig = field(default_factory=EvoformerConfig)
    extra_msa: ExtraMsaConfig = field(default_factory=ExtraMsaConfig)
    template: TemplateConfig = field(default_factory=TemplateConfig)
    structure_module: StructureModuleConfig = field(default_factory=StructureModuleConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    target_feat_dim: int = 22  # Alg. 3: one-hot aatype incl. unknown and the "between segment" bit
    msa_feat_dim: int = 49  # Alg. 3: one-hot (23) + has_del. + del. value + profile (23) + mean del.
    extra_msa_feat_dim: int = 25  # one-hot (23) + has_deletion + deletion_value
    max_relative_feature: int = 32  # Alg. 4: relative positions clipped to [-32, 32]
    recycle_features: bool = True  # Alg. 32: embed previous m_1 and z
    recycle_pos: bool = True  # Alg. 32: embed previous pseudo-beta distogram
    prev_pos_min_bin: float = 3.25
    prev_pos_max_bin: float = 20.75
    prev_pos_num_bins: int = 15


BASE = ModelConfig()
