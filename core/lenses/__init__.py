"""First floor: ways of looking at a model's latent space; each takes any model of the protocol.

``latent`` (codes, traversals, interpolation, sampling, the manifold grid), ``projection`` (PCA,
UMAP, t-SNE for the map), ``neighbours`` (nearest codes), ``directions`` (latent arithmetic and
attribute directions) and ``denoise`` (corrupt, denoise side by side, PSNR/SSIM, classical
baselines).

May import: ``core.models`` and ``core.data`` (never a file format: a lens gets a loaded model).
"""

MAY_IMPORT = ("models", "data")
