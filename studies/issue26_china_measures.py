"""Issue 26: China fit statistics at the shipped parameters (debt ratios 2006-2023, nominal growth 2001-2023).

Run: python studies/issue26_china_measures.py
"""
import numpy as np
from sdmodel.calibration import Problem, load_config, fit_statistics
cfg = load_config("china"); prob = Problem(cfg)
x = [prob.model.parameters[n].value for n in prob.names]
import time; t=time.time(); paths = prob.simulate(x); print("ok", paths["ok"][0], time.time()-t)
fs = fit_statistics(prob, paths, (2006, 2023))
print(fs[["rmse"]].to_string())
fs = fit_statistics(prob, paths, (2001, 2023)); print("nominal growth 2001-23", fs.loc["gdp_growth_nominal","rmse"] if "gdp_growth_nominal" in fs.index else None)
