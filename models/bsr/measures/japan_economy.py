"""Japan: the economy under the debt ratios (issue 26, done-means 1), measured on the shipped scenario.

Run: python models/bsr/measures/japan_economy.py [--config japan_respec]
Uses the calibration config's own data columns and timing shifts (calibration/japan.yaml, or the config named), at
the parameters installed in its scenario's parameter file (models/bsr/scenarios/japan.params.yaml).
"""

import argparse

import numpy as np

from sdmodel.estimate.calibration import Problem, load_config


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="japan", help="calibration config (default japan)")
    cfg = load_config(ap.parse_args(argv).config)
    prob = Problem(cfg)
    x = [prob.model.parameters[n].value for n in prob.names]
    paths = prob.simulate(x)
    assert paths["ok"][0], "the run failed"
    by = {t.name: t for t in cfg.targets}

    def pairs(name, y0, y1):
        years, data = prob.obs[name]
        model = np.asarray(paths[name][0])
        m = (years >= y0) & (years <= y1)
        return years[m], data[m], model[m]

    def rmse(name, y0, y1):
        _, d, mv = pairs(name, y0, y1)
        if by[name].log:
            d, mv = 100 * np.log(d), 100 * np.log(mv)
        return float(np.sqrt(np.mean((mv - d) ** 2))), float(np.mean(mv - d)), len(d)

    yrs, d, mv = pairs("nl_firms", 1998, 2015)
    print(f"firms net savers FY1998-2015: model {int((mv > 0).sum())} of {len(mv)} (data {int((d > 0).sum())})")
    rows = [("nl_firms", 1994, 2019), ("nl_households", 1994, 2019), ("nl_government", 1994, 2019),
            ("hh_saving_rate", 1980, 2019), ("current_account", 1980, 2019), ("gdp_growth_real", 1980, 2019),
            ("hh_debt_gdp", 1980, 2019), ("firm_debt_gdp", 1980, 2019), ("gov_debt_gdp", 1980, 2019),
            ("nl_rest_of_world", 1994, 2019), ("hh_net_lending", 1980, 2019), ("gov_net_lending", 1980, 2019),
            ("output_gap", 1980, 2019), ("inflation", 1980, 2019), ("gdp_nominal", 1980, 2019),
            ("land_price", 1980, 2019), ("npl_ratio", 1980, 2019)]
    print(f"{'target':18s} {'years':>9s} {'n':>3s} {'rmse':>7s} {'bias':>7s}")
    for name, y0, y1 in rows:
        r, b, n = rmse(name, y0, y1)
        print(f"{name:18s} {y0}-{y1 % 100:02d} {n:3d} {r:7.2f} {b:+7.2f}")
    # the model's households own no dwellings, so their saving has no consumption of fixed capital to deduct: it is
    # a gross rate. AMECO gives both; the difference is the depreciation of dwellings (models/bsr/README.md, Status)
    yrs, _, mv = pairs("hh_saving_rate", 1980, 2019)
    rates = {k: prob.data[f"hh_saving_rate_{k}"].reindex(yrs).to_numpy(float) for k in ("gross", "net")}
    for k, d in rates.items():
        print(f"hh_saving_rate against AMECO's {k} rate: rmse {np.sqrt(np.nanmean((mv - d) ** 2)):.2f}, "
              f"bias {np.nanmean(mv - d):+.2f}")
    print(f"(the config fits column {by['hh_saving_rate'].column!r})")

    def dec(v, a):
        return np.nanmean(v[(yrs >= a) & (yrs < a + 10)])

    print("hh_saving_rate by decade (model / gross / net):",
          ", ".join(f"{a}s {dec(mv, a):.1f} / {dec(rates['gross'], a):.1f} / {dec(rates['net'], a):.1f}"
                    for a in (1980, 1990, 2000, 2010)))

if __name__ == "__main__":
    main()
