"""Historical data: readers of the publishers' files and the builder of the calibration target
data (:mod:`~sdmodel.data.readers`, whose names are re-exported here), and leverage ratios
(:mod:`~sdmodel.data.leverage`).
"""

from sdmodel.data.readers import *  # noqa: F403 (the readers' public names, as sdmodel.data.<name>)
from sdmodel.data.readers import __all__  # noqa: F401
