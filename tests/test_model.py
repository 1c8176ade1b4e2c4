"""Tests of build_model: parameter counts, outputs, gradients, serialization."""

import functools
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from jgr_p2o_tf import skeletons
from jgr_p2o_tf.losses import jgr_p2o_loss
from jgr_p2o_tf.model import JGRP2OModel
from jgr_p2o_tf.model import build_model
from keras_test_helper import trainable_gradients

REPO = pathlib.Path(__file__).resolve().parents[1]

# (head, graph) of every configuration of the model.
CONFIGS = [("jgr", "skeleton"), ("jgr", "feature_similarity"),
           ("jgr", "parameterized"), ("p2o", "skeleton"),
           ("attention", "skeleton"), ("dhm", "skeleton")]
CONFIG_IDS = [f"{head}-{graph}" for head, graph in CONFIGS]
# Small models for everything but the parameter counts: 64×64 crops, 16×16
# output grid, 16 features, two stacks (so the links between stacks are in).
SMALL = {"num_features": 16, "input_size": 64, "num_stacks": 2}
JOINTS = 14
BATCH = 2

# Parameter counts for 14 joints (NYU), 96×96, 128 features: configuration,
# build_model arguments, the paper's figure, its tolerance, and the exact
# trainable and all-weights (with BN moving statistics) counts.
PAPER_COUNTS = [
    ("1 stack (Table 3)", {"num_stacks": 1}, 0.72e6, 0.015, 715_488, 722_848),
    ("2 stacks, skeleton graph (Tables 1, 3, 4)", {}, 1.37e6, 0.015,
     1_365_216, 1_378_976),
    ("3 stacks (Table 3)", {"num_stacks": 3}, 2.02e6, 0.015, 2_014_944,
     2_035_104),
    ("feature similarity graph (Table 1)", {"graph": "feature_similarity"},
     1.43e6, 0.015, 1_430_752, 1_444_512),
    ("parameterized graph (Table 1)", {"graph": "parameterized"}, 1.37e6,
     0.015, 1_365_608, 1_379_368),
    ("attention baseline (Table 4)", {"head": "attention"}, 1.42e6, 0.03,
     1_414_880, 1_429_152),
    ("DHM baseline (Table 4)", {"head": "dhm"}, 1.37e6, 0.03, 1_359_868,
     1_373_628),
    ("P2O without JGR (Table 2, no count)", {"head": "p2o"}, None, None,
     1_199_840, 1_212_064),
]



@pytest.fixture(autouse=True)
def _seeded_initializers():
  """Reproducible weights: every test starts from the same Keras seed."""
  keras.utils.set_random_seed(0)

def _numpy(x):
  return ops.convert_to_numpy(x)


def _trainable_count(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _depth_crop(size, seed=0):
  """A hand-like crop: a blob of depths in [-0.5, 0.5] on background 1."""
  rng = np.random.default_rng(seed)
  crop = np.ones((BATCH, size, size, 1), np.float32)
  inner = slice(size // 4, 3 * size // 4)
  crop[:, inner, inner] = rng.uniform(-0.5, 0.5,
                                      size=crop[:, inner, inner].shape)
  return crop


def _joints(seed=0):
  rng = np.random.default_rng(seed)
  return rng.uniform([0.25, 0.25, -0.5], [0.75, 0.75, 0.5],
                     size=(BATCH, JOINTS, 3)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _small_model(head, graph):
  return build_model(JOINTS, head=head, graph=graph, skeleton="nyu", **SMALL)


def _flat_outputs(outputs):
  return {f"stack{s + 1}_{key}": _numpy(value)
          for s, stack in enumerate(outputs) for key, value in stack.items()}


def _randomize(model, seed=0):
  """Random weights and BN statistics, so that every weight matters."""
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    value = _numpy(variable)
    if "moving_variance" in variable.path:
      value = rng.uniform(0.5, 2.0, size=value.shape)
    else:
      value = value + rng.normal(scale=0.05, size=value.shape)
    variable.assign(value.astype(np.float32))


def test_parameter_counts_match_the_paper():
  rows = []
  for label, kwargs, paper, tolerance, trainable, total in PAPER_COUNTS:
    model = build_model(JOINTS, **kwargs)
    rows.append((label, _trainable_count(model), model.count_params(), paper,
                 tolerance, trainable, total))
  print(f"\n{'configuration':44s} {'trainable':>10s} {'all':>10s} "
        f"{'paper':>6s} {'Δ trainable':>11s} {'Δ all':>7s}")
  for label, trainable, total, paper, *_ in rows:
    paper_text = "-" if paper is None else f"{paper / 1e6:.2f}M"
    d_trainable = d_total = ""
    if paper is not None:
      d_trainable = f"{100 * (trainable / paper - 1):+.2f}%"
      d_total = f"{100 * (total / paper - 1):+.2f}%"
    print(f"{label:44s} {trainable:10,d} {total:10,d} {paper_text:>6s} "
          f"{d_trainable:>11s} {d_total:>7s}")
  for (label, trainable, total, paper, tolerance, expected_trainable,
       expected_total) in rows:
    assert (trainable, total) == (expected_trainable, expected_total), label
    if paper is not None:
      assert abs(trainable / paper - 1) <= tolerance, label
      assert abs(total / paper - 1) <= tolerance, label


@pytest.mark.parametrize("head,graph", CONFIGS, ids=CONFIG_IDS)
def test_output_shapes(head, graph):
  model = _small_model(head, graph)
  outputs = model(_depth_crop(64))
  assert isinstance(outputs, list) and len(outputs) == 2
  expected = {"joints_uvz": (BATCH, JOINTS, 3),
              "offset_maps": (BATCH, 16, 16, JOINTS, 3),
              "voting_maps": (BATCH, 16, 16, JOINTS)}
  if head == "dhm":
    del expected["offset_maps"]
  for stack in outputs:
    assert {k: tuple(v.shape) for k, v in stack.items()} == expected
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32"
               for v in stack.values())
    np.testing.assert_allclose(_numpy(stack["voting_maps"]).sum(axis=(1, 2)),
                               1.0, atol=1e-5)


def test_a_single_stack_model_returns_a_list_also_after_loading(tmp_path):
  model = build_model(JOINTS, num_stacks=1, num_features=8, input_size=32,
                      coordinate_convention="authors")
  depth = _depth_crop(32)
  outputs = model(depth)
  assert isinstance(outputs, list) and len(outputs) == 1
  assert set(outputs[0]) == {"joints_uvz", "offset_maps", "voting_maps"}
  model.save(tmp_path / "model.keras")
  revived = keras.saving.load_model(tmp_path / "model.keras")
  assert type(revived) is type(model)
  assert revived.coordinate_convention == "authors"
  outputs = revived.predict(depth, verbose=0)
  assert isinstance(outputs, list) and len(outputs) == 1
  np.testing.assert_array_equal(outputs[0]["joints_uvz"],
                                _numpy(model(depth)[0]["joints_uvz"]))


def test_config_is_the_build_arguments_and_rebuilds_under_another_policy():
  own = skeletons.Skeleton("line", tuple("abc"), ((0, 1), (1, 2)))
  model = build_model(3, skeleton=own, num_stacks=1, num_features=8,
                      input_size=32, coordinate_convention="authors")
  _randomize(model)
  # As a .keras file stores it: JSON.
  config = json.loads(json.dumps(model.get_config()))
  assert config == {
      "name": "jgr_p2o_jgr", "trainable": True, "dtype": "float32",
      "num_joints": 3, "num_stacks": 1, "graph": "skeleton", "head": "jgr",
      "num_features": 8, "input_size": 32,
      "skeleton": {"name": "line", "joint_names": ["a", "b", "c"],
                   "bones": [[0, 1], [1, 2]]},
      "coordinate_convention": "authors"}
  assert build_model(14, num_stacks=1, num_features=8, input_size=32,
                     skeleton="nyu").get_config()["skeleton"] == "nyu"
  depth = _depth_crop(32)
  expected = _flat_outputs(model(depth, training=False))
  mixed = JGRP2OModel.from_config({**config, "dtype": "mixed_bfloat16"})
  assert keras.config.dtype_policy().name == "float32"
  assert mixed.get_layer("stem_conv").compute_dtype == "bfloat16"
  assert mixed.get_config() == {**config, "dtype": "mixed_bfloat16"}
  mixed.set_weights(model.get_weights())
  actual = _flat_outputs(mixed(depth, training=False))
  np.testing.assert_allclose(actual["stack1_joints_uvz"],
                             expected["stack1_joints_uvz"], atol=0.01)
  with pytest.raises(ValueError, match="earlier version"):
    JGRP2OModel.from_config({"layers": [], "input_layers": []})


def test_layer_names_are_stable():
  names = {layer.name for layer in _small_model("jgr", "skeleton").layers}
  for name in ("depth_crop", "stem_conv", "stem_residual3_out",
               "stack1_hourglass_level3_upper_out",
               "stack1_hourglass_level1_down_out", "stack1_features_out",
               "stack1_jgr", "stack1_p2o", "stack1_feature_remap_conv",
               "stack1_prediction_remap_conv", "stack2_input", "stack2_jgr",
               "stack2_joints_uvz", "stack2_offset_maps",
               "stack2_voting_maps"):
    assert name in names, name
  assert not any(name.startswith("stack3") for name in names)
  assert "stack1_attention_conv" in {
      layer.name for layer in _small_model("attention", "skeleton").layers}


def test_skeleton_graph_uses_the_datasets_bones():
  model = _small_model("jgr", "skeleton")
  np.testing.assert_array_equal(model.get_layer("stack1_jgr").adjacency,
                                skeletons.NYU.normalized_adjacency())
  icvl = build_model(16, num_stacks=1, num_features=8, input_size=32)
  np.testing.assert_array_equal(icvl.get_layer("stack1_jgr").adjacency,
                                skeletons.ICVL.normalized_adjacency())
  # MSRA and the synthetic hand have the same bones: 21 joints is unambiguous.
  msra = build_model(21, num_stacks=1, num_features=8, input_size=32)
  np.testing.assert_array_equal(msra.get_layer("stack1_jgr").adjacency,
                                skeletons.MSRA.normalized_adjacency())


@pytest.mark.parametrize("head,graph", CONFIGS, ids=CONFIG_IDS)
def test_every_trainable_weight_gets_a_gradient(head, graph):
  model = _small_model(head, graph)
  depth, joints = _depth_crop(64), _joints()
  gradients = trainable_gradients(
      model, lambda outputs: jgr_p2o_loss(outputs, joints, depth)[0], depth)
  assert len(gradients) == len(model.trainable_variables)
  for variable, gradient in zip(model.trainable_variables, gradients):
    assert gradient is not None, variable.path
    assert np.all(np.isfinite(gradient)), variable.path
    assert np.any(gradient != 0), f"{variable.path} gets no gradient"


@pytest.mark.parametrize("head,graph", CONFIGS, ids=CONFIG_IDS)
def test_keras_file_round_trip_gives_identical_outputs(head, graph, tmp_path):
  model = _small_model(head, graph)
  depth = _depth_crop(64)
  path = tmp_path / "model.keras"
  model.save(path)
  revived = keras.saving.load_model(path)
  # JSON has no tuples: compare the configs as the file stores them.
  assert json.dumps(revived.get_config(), sort_keys=True) == json.dumps(
      model.get_config(), sort_keys=True)
  expected = _flat_outputs(model(depth, training=False))
  actual = _flat_outputs(revived(depth, training=False))
  assert actual.keys() == expected.keys()
  for key, value in expected.items():
    np.testing.assert_array_equal(actual[key], value, err_msg=key)


_JAX_SCRIPT = """
import json, sys
import keras
import numpy as np
from jgr_p2o_tf.model import build_model
assert keras.backend.backend() == "jax", keras.backend.backend()
configs, folder = json.loads(sys.argv[1]), sys.argv[2]
depth = np.load(f"{folder}/depth.npy")
for index, kwargs in enumerate(configs):
  model = build_model(14, **kwargs)
  model.load_weights(f"{folder}/model{index}.weights.h5")
  outputs = model(depth, training=False)
  np.savez(f"{folder}/jax{index}.npz", **{
      f"stack{s + 1}_{key}": np.asarray(value)
      for s, stack in enumerate(outputs) for key, value in stack.items()})
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="compares the TensorFlow backend with JAX")
def test_tensorflow_and_jax_give_the_same_outputs(tmp_path):
  depth = _depth_crop(64, seed=3)
  np.save(tmp_path / "depth.npy", depth)
  configs, expected = [], []
  # The default model with both stacks, the other graphs and heads with one
  # (building a model under JAX takes seconds); "p2o" has no layer of its own.
  cases = [("jgr", "skeleton", 2), ("jgr", "feature_similarity", 1),
           ("jgr", "parameterized", 1), ("attention", "skeleton", 1),
           ("dhm", "skeleton", 1)]
  for index, (head, graph, num_stacks) in enumerate(cases):
    kwargs = dict(SMALL, head=head, graph=graph, skeleton="nyu",
                  num_stacks=num_stacks)
    model = build_model(JOINTS, **kwargs)
    _randomize(model, seed=index)
    model.save_weights(tmp_path / f"model{index}.weights.h5")
    configs.append(kwargs)
    expected.append(_flat_outputs(model(depth, training=False)))
  env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO),
             TF_CPP_MIN_LOG_LEVEL="3")
  subprocess.run([sys.executable, "-c", _JAX_SCRIPT, json.dumps(configs),
                  str(tmp_path)], check=True, env=env, cwd=REPO, timeout=300)
  for index, outputs in enumerate(expected):
    with np.load(tmp_path / f"jax{index}.npz") as actual:
      assert set(actual.files) == outputs.keys()
      for key, value in outputs.items():
        np.testing.assert_allclose(actual[key], value, atol=1e-4, rtol=0,
                                   err_msg=f"{cases[index]} {key}")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("head", ["jgr", "dhm", "attention"])
def test_mixed_precision_keeps_outputs_and_loss_in_float32(policy, head):
  depth, joints = _depth_crop(64), _joints()
  # A fresh model: the cached ones have BN statistics from training steps.
  reference = build_model(JOINTS, head=head, skeleton="nyu", **SMALL)
  expected = _flat_outputs(reference(depth, training=False))
  previous = keras.config.dtype_policy()
  try:
    keras.config.set_dtype_policy(policy)
    model = build_model(JOINTS, head=head, skeleton="nyu", **SMALL)
    model.set_weights(reference.get_weights())
    outputs = model(depth, training=False)
    assert model.get_layer("stack1_hourglass_level3_add").compute_dtype == (
        keras.DTypePolicy(policy).compute_dtype)
    total, parts = jgr_p2o_loss(outputs, joints, depth)
  finally:
    keras.config.set_dtype_policy(previous)
  for stack in outputs:
    for value in stack.values():
      assert keras.backend.standardize_dtype(value.dtype) == "float32"
  assert keras.backend.standardize_dtype(total.dtype) == "float32"
  assert np.isfinite(float(_numpy(total))) and len(parts) == 2
  actual = _flat_outputs(outputs)
  # Half precision features, float32 softmax and averages: the joints stay
  # within 1% of the crop of the float32 model's.
  np.testing.assert_allclose(actual["stack2_joints_uvz"],
                             expected["stack2_joints_uvz"], atol=0.01)
  np.testing.assert_allclose(actual["stack2_voting_maps"].sum(axis=(1, 2)),
                             1.0, atol=1e-5)


@pytest.mark.parametrize("kwargs,message", [
    ({"graph": "ring"}, r"Unknown graph 'ring'; expected one of \['skeleton', "
     r"'feature_similarity', 'parameterized'\]"),
    ({"head": "v2v"}, r"Unknown head 'v2v'; expected one of \['jgr', 'p2o', "
     r"'attention', 'dhm'\]"),
    ({"skeleton": "icvl"}, "Skeleton 'icvl' has 16 joints but num_joints is "
     "14"),
    ({"skeleton": "hands17"}, "Unknown skeleton 'hands17'"),
    ({"input_size": 100}, "input_size must be a positive multiple of 32"),
    ({"input_size": 48}, "input_size must be a positive multiple of 32"),
    ({"num_features": 30}, "num_features must be a positive multiple of 4"),
    ({"num_stacks": 0}, "num_stacks must be a positive integer"),
    ({"coordinate_convention": "tf1"}, "Unknown coordinate convention 'tf1'"),
])
def test_bad_arguments_raise_value_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    build_model(JOINTS, **kwargs)


def test_skeleton_is_required_only_when_the_joint_count_is_unknown():
  with pytest.raises(ValueError, match="No known skeleton has 15 joints"):
    build_model(15)
  with pytest.raises(ValueError, match="num_joints must be a positive"):
    build_model(0)
  own = skeletons.Skeleton("line", tuple("abc"), ((0, 1), (1, 2)))
  model = build_model(3, skeleton=own, num_stacks=1, num_features=8,
                      input_size=32)
  np.testing.assert_array_equal(model.get_layer("stack1_jgr").adjacency,
                                own.normalized_adjacency())
  build_model(15, graph="parameterized", num_stacks=1, num_features=8,
              input_size=32)
  build_model(15, head="p2o", num_stacks=1, num_features=8, input_size=32)


def test_importing_the_package_does_not_import_keras():
  code = ("import sys, jgr_p2o_tf; "
          "assert 'keras' not in sys.modules, 'keras'; "
          "assert 'tensorflow' not in sys.modules, 'tensorflow'; "
          "assert callable(jgr_p2o_tf.build_model)")
  subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                 env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
