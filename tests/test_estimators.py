"""brainnet's estimators keep scikit-learn's contract (``parametrize_with_checks``).

They are used inside scikit-learn pipelines, grids and cross-validation
helpers, so every check of the estimator API applies, without exceptions.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from brainnet.categories import PLSDA
from brainnet.encoding import VoxelwiseRidgeCV
from brainnet.pls import KernelPLS


# KernelPLS with one component: the checks fit data with as few as two features, and like
# scikit-learn's PLSRegression it refuses more components than the data have.
@parametrize_with_checks([VoxelwiseRidgeCV(), KernelPLS(n_components=1), PLSDA()])
def test_estimator_follows_the_scikit_learn_contract(estimator, check):
    check(estimator)
