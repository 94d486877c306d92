"""Ground floor: what a model is.

``config`` (the model kinds and their settings), ``networks`` (the shipped encoders, decoders and
:class:`~core.models.networks.AutoEncoder`), ``losses`` (likelihoods and KL terms), ``protocol``
(:class:`~core.models.protocol.LatentModel`, what every page and analysis asks of a model) and
``evaluate`` (ELBO terms, importance-weighted likelihood, the card's measures).

May import: nothing else of ``core`` (a model knows no data set, file format or page).
"""

MAY_IMPORT: tuple[str, ...] = ()
