"""Raw dataset readers (one module per dataset) and hand centres.

A Reader (see ``frame.Reader``) gives ``len(reader)``, ``reader.frame_ids``,
``reader.read(index) -> Frame``, ``reader.skeleton``, ``reader.camera`` and
``reader.subject(index)``. ``dataset_profiles.get_reader(name, data_dir,
split, **kwargs)`` finds a dataset's reader by name.
"""

from jgr_p2o_tf.datasets.frame import DatasetError
from jgr_p2o_tf.datasets.frame import Frame
from jgr_p2o_tf.datasets.frame import Reader
from jgr_p2o_tf.datasets.icvl import IcvlReader
from jgr_p2o_tf.datasets.msra import MsraReader
from jgr_p2o_tf.datasets.nyu import NyuReader
from jgr_p2o_tf.datasets.synthetic import SyntheticReader
