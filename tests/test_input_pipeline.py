"""Tests of jgr_p2o_tf.input_pipeline over splits prepared by data_prep."""

import os

import numpy as np
import pytest
import tensorflow as tf

from jgr_p2o_tf import data_preparation
from jgr_p2o_tf import input_pipeline
from jgr_p2o_tf import tfrecords
from tests import dataset_fixtures


@pytest.fixture(scope="module")
def icvl_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("icvl")
  dataset_fixtures.write_icvl(root / "raw", 10)
  data_preparation.prepare("icvl", os.fspath(root / "raw"), "train",
                  os.fspath(root / "out"), num_shards=3, progress=False)
  return os.fspath(root / "out")


@pytest.fixture(scope="module")
def msra_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("msra")
  subjects = ["P0", "P1", "P2"]
  dataset_fixtures.write_msra(root / "raw", subjects=subjects)
  data_preparation.prepare("msra", os.fspath(root / "raw"), "all",
                  os.fspath(root / "out"), num_shards=2, progress=False,
                  reader_kwargs={"subjects": subjects})
  return os.fspath(root / "out")


def _frame_ids(dataset):
  return [f.decode() for batch in dataset for f in batch["frame_id"].numpy()]


def test_shapes_and_dtypes(icvl_dir):
  dataset = input_pipeline.make_dataset(icvl_dir, batch_size=4, training=True,
                                        seed=0)
  expected = {
      "depth": ((4, 96, 96, 1), tf.float32),
      "joints_uvz": ((4, 16, 3), tf.float32),
      "joints_xyz": ((4, 16, 3), tf.float32),
      "joints_uvd": ((4, 16, 3), tf.float32),
      "centre_xyz": ((4, 3), tf.float32),
      "cube": ((4, 3), tf.float32),
      "affine": ((4, 2, 3), tf.float32),
      "camera": ((4, 4), tf.float32),
      "frame_id": ((4,), tf.string),
  }
  # Static shapes: a compiled train step sees the full batch shape.
  assert {k: (tuple(s.shape), s.dtype)
          for k, s in dataset.element_spec.items()} == expected
  batches = list(dataset)
  assert len(batches) == 2  # 10 frames, the incomplete batch dropped
  for batch in batches:
    assert {k: (tuple(v.shape), v.dtype) for k, v in batch.items()} == expected
    depth = batch["depth"].numpy()
    assert np.all((depth >= -1) & (depth <= 1))


def test_no_autotuner_thread_to_wait_for(icvl_dir):
  # Deleting an iterator waited out the autotuner's sleep (up to 60 s, CPUs
  # idle); the pipelines run without it, the consumer's maps included.
  for training in (True, False):
    dataset = input_pipeline.make_dataset(icvl_dir, batch_size=4,
                                          training=training, seed=0)
    assert dataset.map(lambda batch: batch).options().autotune.enabled is False


def test_evaluation_reads_every_frame_in_order(icvl_dir):
  dataset = input_pipeline.make_dataset(icvl_dir, batch_size=4,
                                        training=False)
  assert [b["depth"].shape[0] for b in dataset] == [4, 4, 2]
  assert _frame_ids(dataset) == [f"201403121135/image_{i:04d}.png"
                                 for i in range(10)]


def test_same_seed_same_batches_other_seed_other_order(icvl_dir):
  def epoch(seed):
    return list(input_pipeline.make_dataset(icvl_dir, batch_size=2,
                                            training=True, seed=seed))
  first, again, other = epoch(7), epoch(7), epoch(8)
  assert len(first) == len(again) == 5
  for a, b in zip(first, again):
    for key in a:
      np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
  order = _frame_ids(first)
  assert sorted(order) == sorted(_frame_ids(other))
  assert order != _frame_ids(other)
  assert order != sorted(order)


def test_each_epoch_is_reshuffled(icvl_dir):
  dataset = input_pipeline.make_dataset(icvl_dir, batch_size=2, training=True,
                                        seed=7)
  first, second = _frame_ids(dataset), _frame_ids(dataset)
  assert sorted(first) == sorted(second) and first != second


def test_subject_filtering(msra_dir):
  def subjects_read(**kwargs):
    dataset = input_pipeline.make_dataset(msra_dir, batch_size=8,
                                          training=False, **kwargs)
    return sorted({f.split("/")[0] for f in _frame_ids(dataset)})
  assert subjects_read() == ["P0", "P1", "P2"]
  assert subjects_read(subjects=["P1"]) == ["P1"]
  assert subjects_read(exclude_subjects=["P1"]) == ["P0", "P2"]
  assert subjects_read(subjects=["P0", "P1"], exclude_subjects=["P0"]) == [
      "P1"]
  dataset = input_pipeline.make_dataset(msra_dir, batch_size=4, training=True,
                                        seed=1, exclude_subjects=["P2"])
  assert len(_frame_ids(dataset)) == 32  # 34 frames, drop the remainder
  with pytest.raises(ValueError, match="unknown subjects.*P7"):
    input_pipeline.make_dataset(msra_dir, batch_size=4, training=False,
                                subjects=["P7"])
  with pytest.raises(ValueError, match="no crops left"):
    input_pipeline.make_dataset(msra_dir, batch_size=4, training=False,
                                exclude_subjects=["P0", "P1", "P2"])


def test_subject_filter_on_a_split_without_subjects(icvl_dir):
  with pytest.raises(ValueError, match="no subjects"):
    input_pipeline.make_dataset(icvl_dir, batch_size=4, training=False,
                                subjects=["P0"])


def test_cache(icvl_dir, tmp_path):
  for cache in (True, os.fspath(tmp_path / "cache")):
    dataset = input_pipeline.make_dataset(icvl_dir, batch_size=4,
                                          training=False, cache=cache)
    assert _frame_ids(dataset) == _frame_ids(dataset)
    assert len(_frame_ids(dataset)) == 10


def test_unseeded_training_reads_every_frame(icvl_dir):
  dataset = input_pipeline.make_dataset(icvl_dir, batch_size=3, training=True,
                                        drop_remainder=False)
  assert sorted(_frame_ids(dataset)) == [f"201403121135/image_{i:04d}.png"
                                         for i in range(10)]


def test_example_round_trip_and_shape_checks():
  rng = np.random.default_rng(0)
  values = dict(
      depth=rng.uniform(-1, 1, (96, 96)), joints_uvz=rng.uniform(size=(14, 3)),
      joints_xyz=rng.uniform(size=(14, 3)),
      joints_uvd=rng.uniform(size=(14, 3)),
      centre_xyz=rng.uniform(size=3), cube=np.full(3, 300.0),
      affine=rng.uniform(size=(2, 3)), camera=np.array([588., -587., 320, 240]))
  serialized = tfrecords.serialize_example(frame_id="test/ä_1.png", **values)
  parsed = tfrecords.parse_example(tf.constant(serialized), 14)
  assert parsed["frame_id"].numpy().decode() == "test/ä_1.png"
  assert parsed["depth"].shape == (96, 96, 1)
  for name, value in values.items():
    np.testing.assert_array_equal(
        parsed[name].numpy().reshape(np.shape(value)),
        np.float32(value))
  with pytest.raises(ValueError, match="joints_xyz must have shape"):
    tfrecords.serialize_example(frame_id="x", **{
        **values, "joints_xyz": np.zeros((16, 3))})
