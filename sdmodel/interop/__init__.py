"""Other system-dynamics tools: any sdmodel model written as a Vensim ``.mdl`` or XMILE file
(:mod:`~sdmodel.interop.export`). Reading those formats is part of the model stage
(:mod:`sdmodel.model.translate`), since :func:`sdmodel.load_model` reads every format.
"""
