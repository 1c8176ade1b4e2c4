"""Test-wide settings: quiet TensorFlow, a headless matplotlib, TF backend."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

# Epochs of the tiny refiner of ``trained_refiner``: enough to learn which
# way the hand is, on 256 frames.
TINY_REFINER_EPOCHS = 10


def make_synthetic_records(root, train_frames, test_frames, layout="icvl",
                           train_shards=None):
  """Synthetic frames → prepared train/ and test/ records under ``root``."""
  from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
  for split, frames, seed, shards in (("train", train_frames, 0, train_shards),
                                      ("test", test_frames, 1, None)):
    data_preparation.prepare_synthetic_split(root, split, frames, seed,
                                             layout=layout, num_shards=shards)
  return os.path.join(root, "records")


@pytest.fixture(scope="session")
def synthetic_records(tmp_path_factory):
  """Prepared records of 256 training frames in four shards and 64 test
  frames (ICVL layout)."""
  return make_synthetic_records(str(tmp_path_factory.mktemp("synthetic")),
                                256, 64, train_shards=4)


@pytest.fixture(scope="session")
def nyu_export(tmp_path_factory):
  """The paper's model as a SavedModel: (model, export_dir, metadata).

  2 stacks, 128 features, NYU's 14 joints, random weights and batch norm
  statistics; exported with XLA and batch norms folded.
  """
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  from tests import test_export  # pylint: disable=g-import-not-at-top
  model = model_lib.build_model(14)
  test_export.randomize_batch_norm(model)
  export_dir = tmp_path_factory.mktemp("nyu") / "saved_model"
  metadata = exporter.export_saved_model(
      model, export_dir, skeleton="nyu", cube_mm=300.0, dataset="nyu")
  return model, export_dir, metadata


@pytest.fixture(scope="session")
def refiner_records(synthetic_records):
  """The 256 training frames of ``synthetic_records`` prepared again with
  centre refiner crops: the records' folder."""
  from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(synthetic_records)
  out_dir = os.path.join(root, "refiner_records", "train")
  data_preparation.prepare("synthetic", os.path.join(root, "raw"), "train",
                           out_dir, centres="ground_truth", num_shards=2,
                           refiner_crops="coarse", progress=False)
  return out_dir


@pytest.fixture(scope="session")
def trained_refiner(refiner_records, tmp_path_factory):
  """A tiny centre refiner trained on ``refiner_records``: its run folder."""
  from jgr_p2o_tf import centre_training  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import train_config  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path_factory.mktemp("refiner"))
  centre_training.train(train_config.TrainConfig(
      train_dir=refiner_records, model_dir=model_dir, task="centre",
      epochs=TINY_REFINER_EPOCHS, batch_size=32, learning_rate=3e-3,
      learning_rate_decay=0.9, refiner_features=4, progress_bar=False),
      log=lambda _: None)
  return model_dir


@pytest.fixture(scope="session")
def refiner_steps(trained_refiner):
  """Two refinement steps as the demo's, (CentreRefiner, source) each: the
  tiny refiner, then the same weights in the pose cube (250 mm), so that
  the steps differ in cube as the demo's coarse and fine refiners do."""
  from jgr_p2o_tf import centre_refiner  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  coarse, source = exporter.load_centre_refiner(trained_refiner)
  fine = centre_refiner.CentreRefiner.from_config(
      {**coarse.get_config(), "cube_mm": [250.0] * 3})
  fine.set_weights(coarse.get_weights())
  return [(coarse, source), (fine, None)]


@pytest.fixture(scope="session")
def refiner_export(refiner_steps, tmp_path_factory):
  """A small pose model exported with ``refiner_steps`` bundled:
  (export_dir, metadata)."""
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  from tests import test_export  # pylint: disable=g-import-not-at-top
  export_dir = tmp_path_factory.mktemp("refined") / "saved_model"
  metadata = exporter.export_saved_model(
      test_export.small_model(), export_dir, skeleton="icvl", cube_mm=250.0,
      dataset="icvl", centre_refiners=refiner_steps)
  return export_dir, metadata
