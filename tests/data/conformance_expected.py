"""Writes the importer's conformance outputs, ``tests/data/{vensim,xmile}/<model>.expected.csv``.

Each column is a closed form of the rule the format's specification gives (see each CSV's comment
lines), computed with numpy alone: no simulator, sdmodel's or another, is run. Run from the repository
root: ``python tests/data/conformance_expected.py``.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def write(path, header_lines, cols):
    names = list(cols)
    n = len(cols[names[0]])
    with open(path, "w") as f:
        for h in header_lines:
            f.write("# " + h + "\n")
        f.write(",".join(f'"{c}"' if "," in c else c for c in names) + "\n")
        for i in range(n):
            f.write(",".join(repr(float(cols[c][i])) for c in names) + "\n")


def array_builtins():
    t, n, one = np.arange(5) * 0.5, np.arange(5), np.ones(5)
    pop = {c: p0 * (1 + r * 0.5) ** n for c, p0, r in (("north", 10, 0.1), ("south", 30, 0.2), ("east", 50, -0.1))}
    total = pop["north"] + pop["south"] + pop["east"]
    w = {("north", "firms"): 1, ("north", "households"): 2, ("south", "firms"): 3,
         ("south", "households"): 4, ("east", "firms"): 5, ("east", "households"): 6}
    cols = {"t": t}
    for c in pop:
        cols[f"population[{c}]"] = pop[c]
    cols["total"] = total
    cols["total bare"] = total
    for c in pop:
        cols[f"share[{c}]"] = pop[c] / total
    cols["firm product"] = one * 1 * 3 * 5
    cols["column sum[firms]"] = one * (1 + 3 + 5)
    cols["column sum[households]"] = one * (2 + 4 + 6)
    for c in pop:
        cols[f"row mean[{c}]"] = one * (w[(c, "firms")] + w[(c, "households")]) / 2
    cols["largest"] = one * 6
    cols["smallest"] = one * 1
    cols["largest ratio"] = np.maximum(np.maximum(pop["north"] / 1, pop["south"] / 3), pop["east"] / 5)
    cols["count"] = one * 3
    cols["count all"] = one * 6
    cols["mean of arguments"] = one * (1 + 2 + 6) / 3
    cols["larger of two"] = np.maximum(total, 100)
    for c in pop:
        cols[f"households column[{c}]"] = one * w[(c, "households")]
    cols["by index"] = 3 + pop["east"]
    write(HERE / "xmile" / "array_builtins.expected.csv", [
        "Expected output of array_builtins.xmile, worked out from XMILE 1.0 (3.7.1 slices and indices, the array",
        "builtins) by closed forms, not by any simulator: Euler at dt 0.5, population[c] = p0 * (1 + r * 0.5)^n",
        "(p0 = 10 * weights[c, firms], r = growth rate[c]); SUM/PROD/MIN/MAX/MEAN/SIZE over the elements the",
        "wildcard * runs over (a bare arrayed name: all of them); MEAN(1, 2, 6) = 3; a[*, 2] in an equation",
        "arrayed over country is a[country, households]; weights[2, 1] = weights[south, firms].",
    ], cols)


def vector_select():
    t, one = np.arange(5) * 0.5, np.ones(5)
    price = {"north": 3, "south": 5, "east": 4, "west": 7}
    sel = {"north": 1, "south": 0, "east": 2, "west": 0}
    stock = {r: price[r] * (1 + 0.5 * t) for r in price}
    chosen = [r for r in price if sel[r]]
    cols = {"t": t}
    for r in price:
        cols[f"stock[{r}]"] = stock[r]
    ws = [sel[r] * stock[r] for r in chosen]
    cols["weighted sum"] = sum(ws)
    cols["weighted product"] = np.prod([sel[r] * price[r] for r in chosen]) * one
    cols["weighted min"] = np.minimum(*ws)
    cols["weighted max"] = np.maximum(*ws)
    cols["weighted mean"] = sum(ws) / len(ws)
    cols["power product"] = np.prod([price[r] ** sel[r] for r in chosen]) * one
    ss = [stock[r] for r in chosen]
    cols["selected sum"] = sum(ss)
    cols["selected product"] = np.prod([price[r] for r in chosen]) * one
    cols["selected min"] = np.minimum(*ss)
    cols["selected max"] = np.maximum(*ss)
    cols["selected mean"] = sum(ss) / len(ss)
    cols["nothing"] = -one
    matrix = {"firms": [1, 2, 3, 4], "households": [5, 6, 7, 8]}
    for s, row in matrix.items():
        cols[f"by sector[{s}]"] = one * sum(v for v, r in zip(row, price) if sel[r])
    write(HERE / "vensim" / "vector_select.expected.csv", [
        "Expected output of vector_select.mdl, from Vensim's VECTOR SELECT (as PySD implements it) by closed forms:",
        "Euler at dt 0.5, stock[r] = price[r] * (1 + 0.5 t); the selected elements are north (weight 1) and east (2);",
        "actions 0-4 act on selection * expression, 5 is the product of expression ^ selection, 6-10 act on the",
        "expression; no element selected gives the missing value -1.",
    ], cols)


def subscript_mapping_list():
    t = np.arange(3) * 1.0
    one = np.ones(3)
    added = {"agriculture": 10, "industry": 20, "services": 30}
    weight = {"services": 1, "agriculture": 2, "industry": 3}
    cols = {"t": t}
    for s in added:
        cols[f"value added[{s}]"] = one * added[s]
    for b, v in zip(("b1", "b2", "b3"), (10, 20, 30)):
        cols[f"by branch[{b}]"] = one * 2 * v
    for s in added:
        cols[f"weighted[{s}]"] = one * added[s] * weight[s]
    for c, s in zip(("code a", "code b", "code c"), ("services", "agriculture", "industry")):
        cols[f"code value[{c}]"] = one * added[s]
    for s in added:
        cols[f"capital[{s}]"] = t * added[s] * weight[s]
    write(HERE / "vensim" / "subscript_mapping_list.expected.csv", [
        "Expected output of subscript_mapping_list.mdl, from Vensim's subscript mapping onto a list of elements (the",
        "n-th element of the range is the n-th element listed): farming, manufacturing, trade are agriculture,",
        "industry, services; code a, b, c are services, agriculture, industry. Euler at dt 1: capital = t * weighted.",
    ], cols)


def sized_dimension():
    t = np.arange(5) * 0.5
    one = np.ones(5)
    price = {"1": 2, "2": 3, "3": 5}
    cols = {"t": t}
    for p, v in price.items():
        for r in ("north", "south"):
            cols[f"sales[{p},{r}]"] = one * 10 * v
    for r in ("north", "south"):
        cols[f"income[{r}]"] = one * 10 * sum(price.values())
        cols[f"revenue[{r}]"] = t * 10 * sum(price.values())
    cols["second"] = one * price["2"]
    write(HERE / "xmile" / "sized_dimension.expected.csv", [
        "Expected output of sized_dimension.xmile, from XMILE 1.0 (3.7.1): the dimension products of size 3 has the",
        "elements 1, 2, 3; sales[p, r] = 10 * price[p]; income[r] = SUM(sales[*, r]); Euler at dt 0.5: revenue = income * t.",
    ], cols)


if __name__ == "__main__":
    array_builtins()
    vector_select()
    subscript_mapping_list()
    sized_dimension()
