"""Estimation: priors (:mod:`~sdmodel.estimate.priors`), least-squares calibration with its config
(:mod:`~sdmodel.estimate.calibration`), and the posterior, its diagnostics and the out-of-sample
validation (:mod:`~sdmodel.estimate.estimation`). These compute and return frozen results; the run
directories are written by :mod:`sdmodel.report.rundirs`.
"""
