"""Floating-point operations of a JGR-P2O forward pass, from its layers.

``count_flops`` reads the model's layers and applies each one's formula. It
does not use TensorFlow's profiler, which sees neither the einsums of the JGR
module nor anything under JAX; the tests check the convolution and dense
counts against the profiler.
"""

import collections
import math

import keras

from jgr_p2o_tf.layers.differentiable_heatmap import DifferentiableHeatmap
from jgr_p2o_tf.layers.joint_graph_reasoning import JointGraphReasoning
from jgr_p2o_tf.layers.pixel_to_offset import PixelToOffset


def _conv2d_flops(conv, output_height, output_width):
  """2 · k_h · k_w · C_in/groups · C_out per output pixel."""
  kernel_h, kernel_w, inputs_per_group, filters = conv.kernel.shape
  return (2 * kernel_h * kernel_w * inputs_per_group * filters *
          output_height * output_width)


def _dense_flops(dense, rows):
  """2 · C_in · units for each of ``rows`` input vectors."""
  units_in, units = dense.kernel.shape
  return 2 * rows * units_in * units


def _jgr_flops(layer, features_shape):
  """The JGR module's convolutions, dense layers and contractions."""
  height, width, channels = features_shape
  pixels, joints = height * width, layer.num_joints
  convolutions = sum(
      _conv2d_flops(conv, height, width) for conv in (
          layer.voting_conv, layer.pixel_transform, layer.context_conv,
          layer.fusion_conv))
  dense = _dense_flops(layer.graph_transform, joints)
  # Voting (Eq. 2) and mapping back (Eq. 4): (P × N) by (P × C) products;
  # the graph's A^e F^e W^e (Eq. 3): an (N × N) by (N × C) product.
  contractions = 2 * (2 * pixels * joints * channels) + (
      2 * joints * joints * channels)
  if layer.graph == "feature_similarity":
    dense += (_dense_flops(layer.similarity_nu, joints) +
              _dense_flops(layer.similarity_psi, joints))
    contractions += 2 * joints * joints * channels
  return {"conv2d": convolutions, "dense": dense,
          "contractions": contractions}


def _p2o_flops(layer, features_shape):
  """The offset convolution and Eq. 6's weighted sum of the votes."""
  height, width = features_shape[:2]
  return {"conv2d": _conv2d_flops(layer.offset_conv, height, width),
          "contractions": 2 * height * width * layer.num_joints * 3}


def _dhm_flops(layer, features_shape):
  """Heat-map and depth convolutions; soft-argmax and depth sums."""
  height, width = features_shape[:2]
  pixels = height * width
  return {"conv2d": (_conv2d_flops(layer.heatmap_conv, height, width) +
                     _conv2d_flops(layer.depth_conv, height, width)),
          "contractions": 2 * pixels * layer.num_joints * 3}


def count_flops(model):
  """Floating-point operations of one example's forward pass.

  Counted analytically, layer by layer: 2 × the multiply-accumulates of
  every convolution (``2·k·k·C_in·C_out·H_out·W_out``), dense layer and
  matrix product (the JGR module's voting, graph and mapping products, the
  P2O module's weighted sum). Elementwise work (biases, batch normalization,
  activations, softmaxes, pooling, additions) is left out: it is O(activations)
  rather than O(activations × channels), under 1% of the total here.

  Args:
    model: a functional Keras model with a batch dimension first, whose
      layers are each called once.

  Returns:
    dict: "total" and its parts "conv2d", "dense", "contractions".

  Raises:
    ValueError: a layer with weights that has no formula here.
  """
  counts = collections.Counter(conv2d=0, dense=0, contractions=0)
  for layer in model.layers:
    if isinstance(layer, keras.layers.InputLayer):
      continue
    inputs = [tuple(t.shape[1:]) for t in keras.tree.flatten(layer.input)]
    if isinstance(layer, keras.layers.Conv2D):
      height, width = layer.output.shape[1:3]
      counts["conv2d"] += _conv2d_flops(layer, height, width)
    elif isinstance(layer, keras.layers.Dense):
      counts["dense"] += _dense_flops(layer, math.prod(inputs[0][:-1]))
    elif isinstance(layer, JointGraphReasoning):
      counts.update(_jgr_flops(layer, inputs[0]))
    elif isinstance(layer, PixelToOffset):
      counts.update(_p2o_flops(layer, inputs[0]))
    elif isinstance(layer, DifferentiableHeatmap):
      counts.update(_dhm_flops(layer, inputs[0]))
    elif layer.weights and not isinstance(
        layer, keras.layers.BatchNormalization):
      raise ValueError(f"No FLOP formula for layer {layer.name!r} "
                       f"({type(layer).__name__})")
  return {"total": sum(counts.values()), **counts}
