"""One home for each experiment: the sweeps, fits and statistical tests that the
claim checks assert on, ``paper_checks`` plots and the derivation notebooks narrate.

Each module runs one experiment and returns its measurements as a dataclass;
nothing here decides pass/fail (the claims do) or draws (paper_checks does).
"""
