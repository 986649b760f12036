"""China's fit at the shipped parameters: RMSE of the debt ratios (2006-2023) and of nominal growth (2001-2023).

Run: python models/bsr/measures/china_fit.py
Uses the calibration config's own data columns and timing shifts (calibration/china.yaml), at the
parameters installed in models/bsr/scenarios/china.params.yaml.
"""

from sdmodel.estimate.calibration import Problem, fit_statistics, load_config


def main():
    prob = Problem(load_config("china"))
    paths = prob.simulate([prob.model.parameters[n].value for n in prob.names])
    assert paths["ok"][0], "the run failed"
    print(fit_statistics(prob, paths, (2006, 2023))[["rmse"]].to_string())
    growth = fit_statistics(prob, paths, (2001, 2023))
    if "gdp_growth_nominal" in growth.index:
        print(f"nominal growth 2001-2023: RMSE {growth.loc['gdp_growth_nominal', 'rmse']:.2f}")


if __name__ == "__main__":
    main()
