"""Test-wide settings: quiet TensorFlow, a headless matplotlib, TF backend."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest


def make_synthetic_records(root, train_frames, test_frames, layout="icvl"):
  """Synthetic frames → prepared train/ and test/ records under ``root``."""
  from data_prep import prepare  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf.synthetic import writer  # pylint: disable=g-import-not-at-top
  for split, frames, seed in (("train", train_frames, 0),
                              ("test", test_frames, 1)):
    writer.generate(os.path.join(root, "raw", split), frames, seed,
                    layout=layout, workers=1, progress=False)
    prepare.prepare("synthetic", os.path.join(root, "raw"), split,
                    os.path.join(root, "records", split),
                    centres="ground_truth", workers=1, progress=False)
  return os.path.join(root, "records")


@pytest.fixture(scope="session")
def synthetic_records(tmp_path_factory):
  """Prepared records of 256 training and 64 test frames (ICVL layout)."""
  return make_synthetic_records(str(tmp_path_factory.mktemp("synthetic")),
                                256, 64)
