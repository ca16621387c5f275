"""CMMD (Jayasumana et al., 2024) exactly as google-research/cmmd defines it.

MMD with a Gaussian RBF kernel over CLIP image embeddings: sigma 10, scale 1000, the
biased (V-statistic) estimator, diagonal terms included. The embeddings are taken as
given; google-research L2-normalises CLIP ViT-L/14-336 image embeddings before this step
(the CLIP encoder in `media/image_features.py` does the same). With the default
colour features of the sample world the number is CMMD's formula in that space, not the
published metric; the report names the feature space.
"""

from __future__ import annotations

import numpy as np

SIGMA = 10.0
SCALE = 1000.0


def _kernel_mean(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> float:
    gamma = 1.0 / (2.0 * SIGMA**2)
    d2 = -2.0 * (a @ b.T) + a_sq[:, None] + b_sq[None, :]
    return float(np.mean(np.exp(-gamma * d2)))


def cmmd(x: np.ndarray, y: np.ndarray) -> float:
    """CMMD between two sets of embeddings (rows), e.g. reference vs generated images."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"cmmd: need two 2-D arrays of the same width, got {x.shape} and {y.shape}"
        )
    if not len(x) or not len(y):
        raise ValueError("cmmd: an embedding set is empty")
    x_sq = np.einsum("ij,ij->i", x, x)
    y_sq = np.einsum("ij,ij->i", y, y)
    k_xx = _kernel_mean(x, x, x_sq, x_sq)
    k_yy = _kernel_mean(y, y, y_sq, y_sq)
    k_xy = _kernel_mean(x, y, x_sq, y_sq)
    return SCALE * (k_xx + k_yy - 2.0 * k_xy)
