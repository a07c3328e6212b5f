"""Defaults and choices shared by the analyses and the command line.

They live here, away from the numerical code, so that ``brainnet COMMAND
--help`` can show them without importing scikit-learn, scipy or torch (each
analysis module imports its own values from here; change a default in this
one place).
"""

from __future__ import annotations

# encoding (per-subject, network -> voxels)
ENCODE_PERMUTATIONS = 200
ENCODE_MODELS = ("ridge", "pls")

# group decoding of network units (the paper's Fig. 4)
DECODE_COMPONENTS = 10  # the paper's choice
DECODE_PERMUTATIONS = 200  # paper: 10,000 (--permutations 10000); keeps the demo under a minute
DECODE_BOOTSTRAP = 30  # paper: 1,000 (--bootstrap 1000)
DECODE_CLUSTER_DRAWS = 100  # bootstrap and permutations of the cluster count; paper: 5,000

# category decoding with participant-independent folds (the paper's experiment II)
CATEGORIZE_PERMUTATIONS = 100
CATEGORIZE_MODELS = ("plsda", "logistic")

# single-trial beta estimators (brainnet.betas.BETA_METHODS), the default first
BETA_METHODS = ("glmsingle", "lss", "lsa")

# confound strategies of `brainnet betas` (brainnet.betas.CONFOUND_STRATEGIES): name -> description
CONFOUND_STRATEGIES = {
    "none": "no confounds",
    "motion6": "6 motion parameters",
    "motion12": "6 motion parameters + derivatives",
    "motion24": "6 motion parameters + derivatives + squares of both (Friston 24)",
    "wmcsf": "Friston 24 + mean white-matter and CSF signals (nilearn's 'simple')",
    "acompcor": ("Friston 24 + fMRIPrep's combined-mask aCompCor components and its cosine regressors "
                 "(nilearn's 'compcor')"),
    "scrubbing": ("Friston 24 + WM/CSF with derivatives and squares; volumes with framewise displacement > 0.5 mm "
                  "or standardised DVARS > 1.5 censored (nilearn's 'scrubbing')"),
}

# RSA
RDM_METRICS = ("correlation", "euclidean", "cosine", "crossnobis")
COMPARISONS = ("spearman", "pearson", "tau-a", "cosine", "whitened-cosine", "whitened-pearson")
