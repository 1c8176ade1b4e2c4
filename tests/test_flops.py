"""FLOP counts of the model (jgr_p2o_tf.flops): formulas and the profiler."""

import collections

import keras
import pytest
import tensorflow as tf

from jgr_p2o_tf import flops as flops_lib
from jgr_p2o_tf.layers.joint_graph_reasoning import JointGraphReasoning
from jgr_p2o_tf.model import build_model


def test_flops_of_a_small_conv_model_match_the_formula():
  inputs = keras.Input((16, 16, 3))
  x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.Conv2D(4, 1, use_bias=False)(x)
  x = keras.layers.MaxPooling2D(2)(x)
  x = keras.layers.Conv2D(6, (3, 1), padding="valid", groups=2)(x)
  x = keras.layers.Dense(5)(x)
  outputs = keras.layers.Dense(7)(keras.layers.Flatten()(x))
  flops = flops_lib.count_flops(keras.Model(inputs, outputs))
  # 16×16 → 8×8 (stride 2) → 4×4 (pool) → 2×4 (3×1 valid); the first dense
  # layer acts on each of the 2·4 pixels, the second on the flattened 2·4·5.
  conv2d = (2 * 3 * 3 * 3 * 8 * 8 * 8 + 2 * 1 * 1 * 8 * 4 * 8 * 8 +
            2 * 3 * 1 * (4 // 2) * 6 * 2 * 4)
  dense = 2 * (2 * 4) * 6 * 5 + 2 * (2 * 4 * 5) * 7
  assert flops == {"total": conv2d + dense, "conv2d": conv2d, "dense": dense,
                   "contractions": 0}


@pytest.mark.parametrize("graph", ["parameterized", "feature_similarity"])
def test_flops_of_the_jgr_module_match_the_formula(graph):
  height, width, channels, joints = 6, 4, 16, 5
  inputs = keras.Input((height, width, channels))
  enhanced, voting_maps = JointGraphReasoning(joints, graph)(inputs)
  flops = flops_lib.count_flops(keras.Model(inputs, [enhanced, voting_maps]))
  pixels = height * width
  conv2d = 2 * pixels * channels * (joints + channels + channels +
                                    2 * channels)
  dense = 2 * joints * channels * channels
  contractions = 2 * 2 * pixels * joints * channels + (
      2 * joints * joints * channels)
  if graph == "feature_similarity":
    dense *= 3
    contractions += 2 * joints * joints * channels
  assert flops == {"total": conv2d + dense + contractions, "conv2d": conv2d,
                   "dense": dense, "contractions": contractions}


@pytest.mark.parametrize("head", ["jgr", "p2o", "attention", "dhm"])
def test_convolution_and_dense_flops_agree_with_tensorflows_profiler(head):
  model = build_model(14, num_stacks=2, head=head, num_features=16,
                      input_size=64, skeleton="nyu")
  flops = flops_lib.count_flops(model)
  function = tf.function(lambda x: model(x, training=False))
  graph = function.get_concrete_function(
      tf.TensorSpec((1, 64, 64, 1), tf.float32)).graph
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  profile = tf.compat.v1.profiler.profile(graph=graph, cmd="graph",
                                          options=options)
  # The profiler's own FLOPs of each node, summed by op type (it has no
  # formula for Einsum, which the JGR module's contractions use).
  by_type = collections.Counter()
  nodes = list(profile.children)
  while nodes:
    node = nodes.pop()
    nodes += node.children
    by_type[graph.get_operation_by_name(node.name).type] += node.float_ops
  # 1×1 convolutions are matrix products (layers.conv2d): the profiler
  # counts them as MatMul, as the dense layers.
  assert flops["conv2d"] + flops["dense"] == (by_type["Conv2D"] +
                                              by_type["MatMul"])
  assert flops["conv2d"] > by_type["Conv2D"] > 0
  assert (flops["dense"] > 0) == (head in ("jgr", "dhm"))
  assert 0 < flops["contractions"] < 0.1 * flops["total"]


def test_default_model_is_under_a_gigaflop_per_frame():
  model = build_model(14, skeleton="nyu")
  flops = flops_lib.count_flops(model)
  assert model.count_params() == 1_378_976
  assert 0.5e9 < flops["total"] < 1e9


def test_a_layer_without_a_formula_is_refused():
  inputs = keras.Input((8, 8, 3))
  outputs = keras.layers.DepthwiseConv2D(3)(inputs)
  with pytest.raises(ValueError, match="No FLOP formula.*DepthwiseConv2D"):
    flops_lib.count_flops(keras.Model(inputs, outputs))
