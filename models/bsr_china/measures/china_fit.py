"""China's fit at the installed parameters: issue 26's done-means for China.

Run: python models/bsr_china/measures/china_fit.py
RMSE of every debt ratio over 2006-2023 (households, firms, general government, and the government by
level where the data have years: central 2020-2023, local 2014-2023, vehicles 2020-2023) and of nominal
GDP growth over 2001-2023, with the calibration config's own data columns and timing shifts
(calibration/china.yaml), at the parameters installed in models/bsr_china/scenarios/china.params.yaml.
"""

from sdmodel.estimate.calibration import Problem, fit_statistics, load_config

DEBT = ("hh_debt_gdp", "firm_debt_gdp", "gov_debt_gdp", "central_debt_gdp", "local_debt_gdp", "lgfv_debt_gdp")
BOUNDS = {"debt ratio (each), 2006-2023": 6.0, "nominal GDP growth, 2001-2023": 3.0}


def main():
    prob = Problem(load_config("china"))
    paths = prob.simulate([prob.model.parameters[n].value for n in prob.names])
    if not paths["ok"][0]:
        raise SystemExit("the run at the installed parameters failed")
    debt = fit_statistics(prob, paths, (2006, 2023))
    growth = fit_statistics(prob, paths, (2001, 2023))
    print("measure                          years  RMSE  bound  met")
    for name in DEBT:
        r = debt.loc[name]
        print(f"{name:32s} {int(r.n):5d} {r.rmse:5.2f}  {6.0:5.1f}  {'yes' if r.rmse <= 6 else 'no'}")
    r = growth.loc["gdp_growth_nominal"]
    print(f"{'gdp_growth_nominal (2001-2023)':32s} {int(r.n):5d} {r.rmse:5.2f}  {3.0:5.1f}  {'yes' if r.rmse <= 3 else 'no'}")
    print("\nreported (2001-2023): mean bias in points or log points")
    for name in ("gdp_growth_nominal", "gdp_growth_real", "inflation", "gdp_nominal", "land_price"):
        r = growth.loc[name]
        print(f"{name:32s} RMSE {r.rmse:6.2f}  bias {r.bias:6.2f}")


if __name__ == "__main__":
    main()
