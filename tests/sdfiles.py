"""Running an imported Vensim/XMILE file both ways: PySD's run and sdmodel's, for the importer's tests."""

import shutil
import warnings

import sdmodel


def pysd_model(path, tmp_path, *extra):
    """PySD's model of ``path``, read from a copy in ``tmp_path/pysd`` (PySD writes a .py file beside the
    file it reads), with the data files a GET DIRECT model reads beside it (``extra``, and ``<stem>_*.csv``)."""
    import pysd

    folder = tmp_path / "pysd"
    folder.mkdir(exist_ok=True)
    for f in (path, *extra, *path.parent.glob(f"{path.stem}_*.csv")):
        shutil.copy(f, folder / f.name)
    copy = folder / path.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pysd.read_vensim(str(copy)) if copy.suffix == ".mdl" else pysd.read_xmile(str(copy))


def pysd_run(path, tmp_path, *extra, **params):
    """PySD's run of ``path`` (parameters by their Vensim names); its warnings (a DELAY FIXED rounded to
    whole steps, data held beyond their last time) silenced."""
    m = pysd_model(path, tmp_path, *extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return m.run(params=params or None)


def ours(path, **params):
    """sdmodel's run of an imported file (Euler at the file's step, the importer's default), with the
    parameters as columns too, every column by its model name (``stock__north``, not the label
    ``stock[north]`` that results show)."""
    model = sdmodel.load_model(path)
    if params:
        model = model.with_params(**params)
    frame = sdmodel.simulate(model, solver=sdmodel.Solver(method="euler")).to_frame()
    # by the model's names (stock__north), as the tests look them up through Translation.names
    frame = frame.rename(columns={label: name for name, label in model.labels.items()})
    for name, value in model.param_values.items():
        frame[name] = value
    return frame
