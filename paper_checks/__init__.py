"""Paper checks: the findings of arXiv 2602.19964 reproduced with real
finite-width networks, as figures plus the plotted numbers.

``python -m paper_checks [--quick] [--out DIR] [--only c2,c9]`` (also
``ntk-equiv paper-checks``) writes, for each figure module below, a PNG and a
JSON of the plotted numbers to ``paper_checks/out/``, and a generated
``REPORT.md`` with the figures, the headline numbers and the command.

One module per figure (each has ``KEY``, ``CLAIM``, ``TITLE`` and
``run(out, quick, seed) -> FigureResult``):

* :mod:`.c2_kernel_convergence`   C2 empirical NTK -> Theta, log-log with fitted slope
* :mod:`.c4_trained_vs_linearised` C4 trained networks vs the linearised prediction
* :mod:`.c6a_rnd_vs_ensemble`     C6a RND eps^2 vs twice the ensemble variance
* :mod:`.c6c_chi_square`          C6c chi-square law of the RND estimator
* :mod:`.c8_posterior_samples`    C8 Bayesian-RND samples over the NTK-GP posterior
* :mod:`.c9_ordering`             C9 ensemble <= NTK-GP posterior <= prior
"""
FIGURES = (
    "c2_kernel_convergence",
    "c4_trained_vs_linearised",
    "c6a_rnd_vs_ensemble",
    "c6c_chi_square",
    "c8_posterior_samples",
    "c9_ordering",
)
