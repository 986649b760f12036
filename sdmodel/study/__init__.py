"""Studies of many runs: study configs, outcomes and chunked evaluation (:mod:`~sdmodel.study.base`),
global sensitivity analysis (:mod:`~sdmodel.study.sensitivity`) and policy sequencing
(:mod:`~sdmodel.study.sequencing`).
"""
