"""Raw dataset readers (one module per dataset) and hand centres.

``get_reader(name, data_dir, split, **kwargs)`` returns a Reader (see
``frame.Reader``): ``len(reader)``, ``reader.frame_ids``,
``reader.read(index) -> Frame``, ``reader.skeleton``, ``reader.camera`` and
``reader.subject(index)``.
"""

from jgr_p2o_tf.datasets.frame import DatasetError
from jgr_p2o_tf.datasets.frame import Frame
from jgr_p2o_tf.datasets.frame import Reader
from jgr_p2o_tf.datasets.icvl import IcvlReader
from jgr_p2o_tf.datasets.msra import MsraReader
from jgr_p2o_tf.datasets.nyu import NyuReader
from jgr_p2o_tf.datasets.synthetic import SyntheticReader

DATASETS = ("nyu", "icvl", "msra", "synthetic")

_READERS = {
    "nyu": NyuReader,
    "icvl": IcvlReader,
    "msra": MsraReader,
    "synthetic": SyntheticReader,
}


def get_reader(name, data_dir, split, **kwargs):
  """The reader of one split of dataset ``name``.

  Args:
    name: one of DATASETS.
    data_dir: the dataset's root folder.
    split: "train" or "test" (NYU, ICVL), "all" (MSRA) or the split folder
      the synthetic generator wrote.
    **kwargs: passed to the reader: NYU ``kinect``; ICVL ``labels``,
      ``image_dir``; MSRA ``subjects``.

  Returns:
    A Reader.

  Raises:
    ValueError: unknown dataset or split.
    DatasetError: the annotation files are missing or malformed.
  """
  try:
    reader = _READERS[name]
  except KeyError:
    raise ValueError(f"Unknown dataset {name!r}; expected one of "
                     f"{list(DATASETS)}.") from None
  return reader(data_dir, split, **kwargs)
