"""The model stage: a model file (YAML, or Vensim/XMILE read through :mod:`sdmodel.model.translate`)
becomes a validated, immutable :class:`~sdmodel.model.spec.Model` (:mod:`~sdmodel.model.spec`, on the
expression language of :mod:`~sdmodel.model.expr`), whose stock dynamics and accounting identities
are derived and proven (:mod:`~sdmodel.model.algebra`, :mod:`~sdmodel.model.accounting`).
"""
