"""What users read: figures (:mod:`~sdmodel.report.plots`), run directories with their manifests
(:mod:`~sdmodel.report.rundirs`), and views of models and runs, the HTML report among them
(:mod:`~sdmodel.report.views`).
"""
