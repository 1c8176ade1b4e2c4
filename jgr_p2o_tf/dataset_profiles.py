"""The datasets the project knows: one DatasetProfile each, in one registry.

Everything else that depends on which dataset it is (data preparation's
default cube, the training epochs, the evaluation intrinsics, the flag
choices of every command, the cameras the synthetic generator imitates)
looks the profile up here by name. A reader module in ``datasets/`` holds
the facts of the dataset's files, its camera among them; the profile adds the
settings the project and the paper choose for it.

Adding a dataset (e.g. HANDS2017/BigHand): write ``datasets/NAME.py`` with a
``Reader`` subclass and the dataset's ``CAMERA``, give its joint layout a
Skeleton in ``skeletons.py`` if none fits, and add a ``DatasetProfile`` to
``PROFILES`` below. The commands offer it from then on.
"""

import dataclasses
from typing import Callable, Optional

from jgr_p2o_tf import geometry
from jgr_p2o_tf.datasets import frame
from jgr_p2o_tf.datasets import icvl
from jgr_p2o_tf.datasets import msra
from jgr_p2o_tf.datasets import nyu
from jgr_p2o_tf.datasets import synthetic


@dataclasses.dataclass(frozen=True)
class DatasetProfile:
  """What defines one dataset for the project.

  Attributes:
    name: the name commands take (``--dataset``) and manifests record.
    skeleton: the joint layout of its labels (``skeletons.SKELETONS``); for
      synthetic data the default, as its files may name another.
    reader: the ``datasets.frame.Reader`` class, called as
      ``reader(data_dir, split, **kwargs)``.
    camera: the depth camera its frames are taken with (synthetic data: the
      camera the generator imitates by default; each split's camera.json
      says which it used).
    cube_mm: edge of the 3D cube cropped around the hand, mm.
    epochs: training epochs of the paper's setting.
    evaluation_camera: the intrinsics the community evaluation toolkit uses
      to turn the dataset's uvd files into xyz; None where there is no such
      toolkit: uvd files are then converted with ``camera`` and a model's
      predictions with each record's own camera.
    subjects: the subjects its frames are recorded from, when the dataset is
      one split evaluated by leaving one subject out (MSRA); else empty.
    v2v_axis_signs: the signs that turn the axes of V2V-PoseNet's
      precomputed centre files for this dataset into ours; None where there
      are no such files.
    read_depth_png: reads one of the dataset's depth PNGs,
      ``f(path, frame id, camera) -> (H, W) float32 mm``.
    authors_train_cubes_mm: the cube edges the authors' code (Fang et al.,
      ``data/importers.py``) crops a training frame with: it draws one per
      frame, uniformly, once when it loads the dataset (``main_nyu.py``
      loads NYU's training set with ``cube=None``, i.e. 250 + 10·randint(6)
      mm; MSRA's training subjects get 150 + 10·randint(6) mm; ICVL's
      training set its fixed 250 mm); empty where they did not train.
    authors_test_cube_mm: the cube edge of the authors' test crops
      (``main_*.py`` load the test split with ``cube=(250, 250, 250)``, the
      left-out MSRA subject with 175 mm); None where they did not test.
  """
  name: str
  skeleton: str
  reader: type
  camera: geometry.Camera
  cube_mm: float
  epochs: int
  evaluation_camera: Optional[geometry.Camera] = None
  subjects: tuple = ()
  v2v_axis_signs: Optional[tuple] = None
  read_depth_png: Callable = frame.read_uint16_depth_png
  authors_train_cubes_mm: tuple = ()
  authors_test_cube_mm: Optional[float] = None


NYU = DatasetProfile(
    name="nyu", skeleton="nyu", reader=nyu.NyuReader, camera=nyu.CAMERA,
    cube_mm=300.0, epochs=58, evaluation_camera=nyu.CAMERA,
    # V2V-PoseNet's NYU world is NYU's, whose y our negative fy keeps.
    v2v_axis_signs=(1.0, 1.0, 1.0), read_depth_png=nyu.read_depth_png,
    authors_train_cubes_mm=(250.0, 260.0, 270.0, 280.0, 290.0, 300.0),
    authors_test_cube_mm=250.0)
ICVL = DatasetProfile(
    name="icvl", skeleton="icvl", reader=icvl.IcvlReader, camera=icvl.CAMERA,
    cube_mm=250.0, epochs=8, evaluation_camera=icvl.EVALUATION_CAMERA,
    # V2V-PoseNet's ICVL world has y down (src/data/ICVL/data.lua), as ours.
    v2v_axis_signs=(1.0, 1.0, 1.0), authors_train_cubes_mm=(250.0,),
    authors_test_cube_mm=250.0)
MSRA = DatasetProfile(
    name="msra", skeleton="msra", reader=msra.MsraReader, camera=msra.CAMERA,
    cube_mm=200.0, epochs=58, evaluation_camera=msra.CAMERA,
    subjects=msra.SUBJECTS,
    # V2V-PoseNet's MSRA world has y up (as MSRA's joint.txt) and z > 0.
    v2v_axis_signs=(1.0, -1.0, 1.0),
    authors_train_cubes_mm=(150.0, 160.0, 170.0, 180.0, 190.0, 200.0),
    authors_test_cube_mm=175.0)
SYNTHETIC = DatasetProfile(
    name="synthetic", skeleton="synthetic", reader=synthetic.SyntheticReader,
    camera=icvl.CAMERA, cube_mm=250.0, epochs=10)

PROFILES = {p.name: p for p in (NYU, ICVL, MSRA, SYNTHETIC)}
NAMES = tuple(PROFILES)


def get_profile(name):
  """The DatasetProfile called ``name``; ValueError naming the known ones."""
  try:
    return PROFILES[name]
  except KeyError:
    raise ValueError(f"Unknown dataset {name!r}; expected one of "
                     f"{list(NAMES)}.") from None


def get_reader(name, data_dir, split, **kwargs):
  """The reader of one split of dataset ``name``.

  Args:
    name: one of NAMES.
    data_dir: the dataset's root folder.
    split: "train" or "test" (NYU, ICVL), "all" (MSRA) or the split folder
      the synthetic generator wrote.
    **kwargs: passed to the reader: NYU ``kinect``; ICVL ``labels``,
      ``image_dir``; MSRA ``subjects``.

  Returns:
    A ``datasets.frame.Reader``.

  Raises:
    ValueError: unknown dataset or split.
    DatasetError: the annotation files are missing or malformed.
  """
  return get_profile(name).reader(data_dir, split, **kwargs)


def profiles_with_skeleton(skeleton_name):
  """The profiles whose labels have the joint layout ``skeleton_name``."""
  return [p for p in PROFILES.values() if p.skeleton == skeleton_name]
