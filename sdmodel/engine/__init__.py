"""The engine: a checked model compiled into batched numpy code and a fused numba kernel
(:mod:`~sdmodel.engine.compiler`, :mod:`~sdmodel.engine.kernel`, cached by :mod:`~sdmodel.engine.cache`),
run once or in batches (:mod:`~sdmodel.engine.simulation`) into result objects
(:mod:`~sdmodel.engine.results`). The engine computes; it writes no files.
"""
