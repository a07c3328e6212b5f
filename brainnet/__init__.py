"""brainnet: compare the units of deep networks with fMRI.

The public API is re-exported here lazily, so ``import brainnet`` and the
command line start fast (torch and nilearn load on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    "BrainnetError": "brainnet.errors",
    "BrainnetNotice": "brainnet.errors",
    # networks and features
    "EmoNet": "brainnet.models.emonet",
    "EMOTIONS": "brainnet.models.emonet",
    "LAYERS": "brainnet.models.emonet",
    "valence_arousal": "brainnet.models.emonet",
    "load_emonet": "brainnet.models.weights",
    "fetch_weights": "brainnet.models.weights",
    "StimulusSet": "brainnet.stimuli",
    "load_stimuli": "brainnet.stimuli",
    "preprocess_image": "brainnet.stimuli",
    "demo_stimuli": "brainnet.stimuli",
    "load_mean_image": "brainnet.stimuli",
    "extract_activations": "brainnet.extract",
    "last_cache_stats": "brainnet.extract",
    "Features": "brainnet.features",
    "load_features": "brainnet.features",
    "save_features": "brainnet.features",
    # study data
    "Study": "brainnet.study",
    "SubjectData": "brainnet.study",
    "load_study": "brainnet.study",
    "load_mask": "brainnet.masks",
    "study_to_template": "brainnet.spaces",
    "study_from_released_betas": "brainnet.released",
    "plot_surface_map": "brainnet.surfaces",
    "MASKS": "brainnet.masks",
    "simulate_study": "brainnet.simulate",
    "load_truth": "brainnet.simulate",
    "single_trial_betas": "brainnet.betas",
    "write_betas_study": "brainnet.betas",
    "read_events": "brainnet.betas",
    "fmriprep_confounds": "brainnet.betas",
    "BETA_METHODS": "brainnet.betas",
    "GLMsingleResult": "brainnet.glmsingle",
    "hrf_library": "brainnet.glmsingle",
    # analyses
    "VoxelwiseRidgeCV": "brainnet.encoding",
    "encode_subject": "brainnet.encoding",
    "encode_subjects": "brainnet.encoding",
    "SubjectsEncodingResult": "brainnet.encoding",
    "EncodingResult": "brainnet.encoding",
    "encode": "brainnet.encoding",
    "repeat_noise_ceiling": "brainnet.encoding",
    "NoiseCeiling": "brainnet.encoding",
    "KernelPLS": "brainnet.pls",
    "CrossValidatedPLS": "brainnet.pls",
    "decode_units": "brainnet.decoding",
    "unit_decoding": "brainnet.decoding",
    "DecodingResult": "brainnet.decoding",
    "confusion_analysis": "brainnet.confusion",
    "ConfusionResult": "brainnet.confusion",
    "unit_confusion": "brainnet.confusion",
    "discriminable_clusters": "brainnet.confusion",
    "PLSDA": "brainnet.categories",
    "decode_categories": "brainnet.categories",
    "categorize_study": "brainnet.categories",
    "decode_categories_within": "brainnet.categories",
    "CategoryResult": "brainnet.categories",
    "power_analysis": "brainnet.power",
    "power_curve": "brainnet.power",
    "PowerResult": "brainnet.power",
    "RDM": "brainnet.rsa",
    "compute_rdm": "brainnet.rsa",
    "compare_rdms": "brainnet.rsa",
    "noise_ceiling": "brainnet.rsa",
    "network_as_subject": "brainnet.rsa",
    "rsa_network_subject": "brainnet.rsa",
    "RSAResult": "brainnet.rsa",
    "contrast_decoding": "brainnet.contrasts",
    "contrast_encoding": "brainnet.contrasts",
    "contrast_rsa": "brainnet.contrasts",
    "paired_contrast_test": "brainnet.contrasts",
    "side_swap_table": "brainnet.contrasts",
    "ContrastResult": "brainnet.contrasts",
    "network_category_decoding": "brainnet.network_subject",
    "decode_network_subject": "brainnet.network_subject",
    "BlockedKFold": "brainnet.naturalistic",
    "encode_naturalistic": "brainnet.naturalistic",
    "convolve_frames": "brainnet.naturalistic",
    "load_frame_features": "brainnet.naturalistic",
    "searchlight_group": "brainnet.searchlight",
    "searchlight_rsa": "brainnet.searchlight",
    "searchlight_encoding": "brainnet.searchlight",
    "sphere_neighbourhoods": "brainnet.searchlight",
    "SearchlightResult": "brainnet.searchlight",
    "partition_subject": "brainnet.partition",
    "variance_partition": "brainnet.partition",
    "PartitionResult": "brainnet.partition",
    "control_features": "brainnet.lowlevel",
    # inference
    "permutation_test": "brainnet.permutation",
    "sign_flip_test": "brainnet.permutation",
    "bootstrap_distribution": "brainnet.permutation",
    "PermutationResult": "brainnet.permutation",
    "null_effect": "brainnet.stats",
    "paper_d_candidates": "brainnet.stats",
    # results, figures, data
    "make_figures": "brainnet.plotting",
    "write_report": "brainnet.report",
    "peak_table": "brainnet.plotting",
    "fetch_dataset": "brainnet.datasets.openneuro",
    "build_image_study": "brainnet.datasets.openneuro",
    "simulate_fmriprep_dataset": "brainnet.datasets.miniature",
    "load_manifest": "brainnet.datasets.manifests",
    "available_datasets": "brainnet.datasets.manifests",
    "download": "brainnet.datasets.download",
    # networks side by side
    "Network": "brainnet.models.registry",
    "Preprocessing": "brainnet.models.registry",
    "NETWORKS": "brainnet.models.registry",
    "get_network": "brainnet.models.registry",
    "register_network": "brainnet.models.registry",
    "network_layers": "brainnet.models.registry",
    "resize_normalize": "brainnet.models.registry",
    "load_thingsvision": "brainnet.features",
    "compare_networks": "brainnet.compare",
    "NetworkComparison": "brainnet.compare",
    "retrain_head": "brainnet.retrain",
    "HeadResult": "brainnet.retrain",
    "network_structure": "brainnet.structure",
    "NetworkStructure": "brainnet.structure",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'brainnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
