"""Tests of the layers of jgr_p2o_tf.layers against the paper's equations."""

import keras
import numpy as np
import pytest
from keras import ops

from jgr_p2o_tf import skeletons
from jgr_p2o_tf.layers import DifferentiableHeatmap
from jgr_p2o_tf.layers import JointGraphReasoning
from jgr_p2o_tf.layers import PixelToOffset
from jgr_p2o_tf.layers import SpatialSoftmax
from jgr_p2o_tf.layers import attention_voting_maps
from jgr_p2o_tf.layers import conv2d
from jgr_p2o_tf.layers import fused_batch_norm
from jgr_p2o_tf.layers import hourglass
from jgr_p2o_tf.layers import offsets_to_joints
from jgr_p2o_tf.layers import pixel_uv
from jgr_p2o_tf.layers import pixel_uvz
from jgr_p2o_tf.layers import residual_block
from jgr_p2o_tf.losses import ground_truth_offset_maps
from keras_test_helper import run_layer_test
from keras_test_helper import trainable_gradients

NUM_JOINTS = 5
# A small chain of five joints for the skeleton graph of the layer tests.
CHAIN = skeletons.Skeleton("chain", tuple("abcde"),
                           ((0, 1), (1, 2), (2, 3), (3, 4)))



@pytest.fixture(autouse=True)
def _seeded_initializers():
  """Reproducible weights: every test starts from the same Keras seed."""
  keras.utils.set_random_seed(0)


def _numpy(x):
  return ops.convert_to_numpy(x)


def _softmax(x, axis):
  x = x - x.max(axis=axis, keepdims=True)
  e = np.exp(x)
  return e / e.sum(axis=axis, keepdims=True)


def _spatial_softmax(logits):
  b, h, w, n = logits.shape
  return _softmax(logits.reshape(b, h * w, n), axis=1).reshape(b, h, w, n)


def _random_voting_maps(rng, shape, scale=3.0):
  return _spatial_softmax(scale * rng.normal(size=shape)).astype(np.float32)


# SpatialSoftmax (Φ, Eq. 1).


def test_spatial_softmax_sums_to_one_per_channel():
  logits = np.random.default_rng(0).normal(size=(3, 5, 7, 4)) * 4
  weights = _numpy(SpatialSoftmax()(logits.astype(np.float32)))
  assert np.all(weights > 0)
  np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, atol=1e-6)
  np.testing.assert_allclose(weights, _spatial_softmax(logits), atol=1e-6)


def test_spatial_softmax_is_invariant_to_an_added_constant():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
  constant = rng.uniform(-50, 50, size=(2, 1, 1, 3)).astype(np.float32)
  layer = SpatialSoftmax()
  np.testing.assert_allclose(_numpy(layer(logits + constant)),
                             _numpy(layer(logits)), atol=1e-6)


def test_spatial_softmax_is_stable_for_large_logits():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(2, 4, 4, 3)) * 1e4
  weights = _numpy(SpatialSoftmax()(logits.astype(np.float32)))
  assert np.all(np.isfinite(weights))
  np.testing.assert_allclose(weights, _spatial_softmax(logits), atol=1e-6)
  peaked = np.zeros((1, 4, 4, 1), np.float32)
  peaked[0, 2, 3, 0] = 1e4
  expected = np.zeros_like(peaked)
  expected[0, 2, 3, 0] = 1.0
  np.testing.assert_array_equal(_numpy(SpatialSoftmax()(peaked)), expected)


def test_spatial_softmax_layer_conventions():
  logits = np.random.default_rng(3).normal(size=(2, 6, 5, 3))
  run_layer_test(SpatialSoftmax, {}, {"logits": logits.astype(np.float32)},
                 (2, 6, 5, 3), float32_outputs=(0,), run_fit=False)


# The output grid shared by P2O, DHM and the loss.


def test_pixel_uvz_grid_centres_and_pooled_depth():
  depth = np.random.default_rng(4).uniform(-1, 1, size=(2, 96, 96, 1))
  grid = _numpy(pixel_uvz(depth.astype(np.float32)))
  assert grid.shape == (2, 24, 24, 3)
  i, j = 5, 17
  np.testing.assert_allclose(grid[1, i, j, :2], [(j + 0.5) / 24,
                                                 (i + 0.5) / 24])
  np.testing.assert_allclose(
      grid[..., 2], depth.reshape(2, 24, 4, 24, 4).mean(axis=(2, 4)),
      atol=1e-6)
  # The centre of output pixel j is the mean of the centres of the crop pixels
  # it covers: (4j + 1.5 + 0.5) / 96.
  crop_centres = (np.arange(96) + 0.5) / 96
  np.testing.assert_allclose(pixel_uv(24, 24)[0, :, 0],
                             crop_centres.reshape(24, 4).mean(axis=1),
                             atol=1e-7)
  with pytest.raises(ValueError, match="multiple of the output stride"):
    pixel_uvz(np.zeros((1, 90, 90, 1), np.float32))


def test_pixel_uvz_in_the_authors_convention_samples_like_their_resize():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  depth = np.random.default_rng(14).uniform(-1, 1, size=(2, 96, 96, 1))
  depth = depth.astype(np.float32)
  grid = _numpy(pixel_uvz(depth, convention="authors"))
  i, j = 5, 17
  np.testing.assert_allclose(grid[1, i, j, :2], [j / 23, i / 23], rtol=1e-6)
  np.testing.assert_array_equal(grid[..., 2], depth[:, ::4, ::4, 0])
  # TF1's tf.image.resize_images(BILINEAR): align_corners and half-pixel
  # centres off, the kernel TensorFlow 2 keeps as the raw op.
  resized = tf.raw_ops.ResizeBilinear(images=depth, size=[24, 24],
                                      align_corners=False,
                                      half_pixel_centers=False)
  np.testing.assert_array_equal(grid[..., 2], resized.numpy()[..., 0])


# PixelToOffset (Eq. 6).


@pytest.mark.parametrize("convention", ["project", "authors"])
def test_ground_truth_offsets_give_the_joints_for_any_voting_maps(convention):
  rng = np.random.default_rng(5)
  depth = rng.uniform(-1, 1, size=(3, 96, 96, 1)).astype(np.float32)
  joints = rng.uniform([0, 0, -1], [1, 1, 1], size=(3, 14, 3))
  offset_maps = ground_truth_offset_maps(joints.astype(np.float32), depth,
                                         convention=convention)
  assert tuple(offset_maps.shape) == (3, 24, 24, 14, 3)
  for scale in (0.1, 3.0, 30.0):
    voting_maps = _random_voting_maps(rng, (3, 24, 24, 14), scale)
    estimated = offsets_to_joints(voting_maps, offset_maps,
                                  pixel_uvz(depth, convention=convention))
    np.testing.assert_allclose(_numpy(estimated), joints, atol=1e-5)


@pytest.mark.parametrize("convention", ["project", "authors"])
def test_pixel_to_offset_layer_averages_pixels_plus_offsets(convention):
  rng = np.random.default_rng(6)
  features = rng.normal(size=(2, 6, 6, 8)).astype(np.float32)
  voting_maps = _random_voting_maps(rng, (2, 6, 6, NUM_JOINTS))
  depth = rng.uniform(-1, 1, size=(2, 24, 24, 1)).astype(np.float32)
  layer = PixelToOffset(NUM_JOINTS, convention)
  joints, offset_maps = layer(features, voting_maps, depth)
  # Channel c·N + k of the convolution is the offset to joint k along c.
  channels = features @ _kernel(layer.offset_conv)
  expected_offsets = channels.reshape(2, 6, 6, 3, NUM_JOINTS).transpose(
      0, 1, 2, 4, 3)
  np.testing.assert_allclose(_numpy(offset_maps), expected_offsets,
                             atol=1e-6)
  np.testing.assert_allclose(_numpy(offset_maps)[1, 2, 3, 4],
                             channels[1, 2, 3, [4, 9, 14]], atol=1e-6)
  if convention == "authors":
    pixels = depth[:, ::4, ::4, 0]
  else:
    pixels = depth.reshape(2, 6, 4, 6, 4).mean(axis=(2, 4))
  grid = np.concatenate(
      [np.broadcast_to(pixel_uv(6, 6, convention), (2, 6, 6, 2)),
       pixels[..., None]], axis=-1)
  expected = np.einsum("bhwk,bhwc->bkc", voting_maps, grid) + np.einsum(
      "bhwk,bhwkc->bkc", voting_maps, expected_offsets)
  np.testing.assert_allclose(_numpy(joints), expected, atol=1e-5)
  # Eq. 6 as the paper writes it, on the layer's own offset maps.
  np.testing.assert_allclose(
      _numpy(joints),
      _numpy(offsets_to_joints(voting_maps, offset_maps, grid)), atol=1e-5)


def test_pixel_to_offset_layer_conventions():
  rng = np.random.default_rng(7)
  run_layer_test(
      PixelToOffset, {"num_joints": NUM_JOINTS,
                      "coordinate_convention": "authors"},
      {"features": rng.normal(size=(2, 6, 6, 8)).astype(np.float32),
       "voting_maps": _random_voting_maps(rng, (2, 6, 6, NUM_JOINTS)),
       "depth_crop": rng.uniform(-1, 1, (2, 24, 24, 1)).astype(np.float32)},
      ((2, NUM_JOINTS, 3), (2, 6, 6, NUM_JOINTS, 3)), float32_outputs=(0, 1))


def test_pixel_to_offset_rejects_a_crop_off_the_grid():
  layer = PixelToOffset(NUM_JOINTS)
  with pytest.raises(ValueError, match="output grid"):
    layer(np.zeros((1, 6, 6, 8), np.float32),
          np.zeros((1, 6, 6, NUM_JOINTS), np.float32),
          np.zeros((1, 20, 20, 1), np.float32))


# Skeleton graphs (Sec. 3.2).


@pytest.mark.parametrize("name", sorted(skeletons.SKELETONS))
def test_skeleton_adjacency_is_the_normalized_bone_graph(name):
  skeleton = skeletons.get_skeleton(name)
  n = skeleton.num_joints
  adjacency = skeleton.normalized_adjacency()
  np.testing.assert_array_equal(adjacency, adjacency.T)
  edges = {(i, j) for i in range(n) for j in range(n)
           if i != j and adjacency[i, j] != 0}
  bones = {(i, j) for i, j in skeleton.bones} | {
      (j, i) for i, j in skeleton.bones}
  assert edges == bones
  # A hand skeleton is a tree: N - 1 bones, one connected component.
  assert len(skeleton.bones) == n - 1
  degree = 1 + np.array([sum(i in bone for bone in skeleton.bones)
                         for i in range(n)])
  for i in range(n):
    for j in range(n):
      connected = i == j or (i, j) in bones
      expected = 1 / np.sqrt(degree[i] * degree[j]) if connected else 0.0
      assert adjacency[i, j] == pytest.approx(expected, rel=1e-6)


# JointGraphReasoning (Eq. 1–5).


def _bn(x, bn):
  gamma, beta, mean, variance = (_numpy(w) for w in (
      bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
  return (x - mean) / np.sqrt(variance + bn.epsilon) * gamma + beta


def _kernel(conv):
  return _numpy(conv.kernel)[0, 0]


def _reference_jgr(layer, x):
  """Eq. 1–5 in NumPy with the layer's weights, BN in inference mode.

  φ' is a 1×1 convolution + BN + ReLU and τ reads [x, c], as in the
  authors' code.
  """
  b, h, w, c = x.shape
  n = layer.num_joints
  votes = _softmax((x @ _kernel(layer.voting_conv)).reshape(b, h * w, n), 1)
  transformed = np.maximum(_bn(x @ _kernel(layer.pixel_transform),
                               layer.pixel_transform_bn), 0).reshape(
                                   b, h * w, c)
  joint_features = np.einsum("bpk,bpc->bkc", votes, transformed)
  if layer.graph == "skeleton":
    connections = layer.adjacency
  elif layer.graph == "parameterized":
    connections = _numpy(layer.learned_adjacency)
  else:
    nu = joint_features @ _numpy(layer.similarity_nu.kernel)
    psi = joint_features @ _numpy(layer.similarity_psi.kernel)
    connections = _softmax(np.einsum("bic,bjc->bij", nu, psi), axis=-1)
  evolved = np.maximum(
      connections @ joint_features @ _numpy(layer.graph_transform.kernel), 0)
  context = np.einsum("bpk,bkc->bpc", votes, evolved).reshape(b, h, w, c) / n
  context = np.maximum(_bn(context @ _kernel(layer.context_conv),
                           layer.context_bn), 0)
  fused = np.concatenate([x, context], axis=-1) @ _kernel(layer.fusion_conv)
  return np.maximum(_bn(fused, layer.fusion_bn), 0), votes.reshape(b, h, w, n)


def _jgr_kwargs(graph):
  adjacency = CHAIN.normalized_adjacency() if graph == "skeleton" else None
  return {"num_joints": NUM_JOINTS, "graph": graph, "adjacency": adjacency}


def _randomize(layer, rng):
  for variable in layer.weights:
    value = rng.normal(scale=0.3, size=variable.shape)
    if "variance" in variable.path:
      value = rng.uniform(0.5, 2.0, size=variable.shape)
    variable.assign(value.astype(np.float32))


@pytest.mark.parametrize("graph", ["skeleton", "feature_similarity",
                                   "parameterized"])
def test_joint_graph_reasoning_computes_equations_1_to_5(graph):
  rng = np.random.default_rng(8)
  x = rng.normal(size=(2, 6, 6, 8)).astype(np.float32)
  layer = JointGraphReasoning(**_jgr_kwargs(graph))
  layer(x)
  _randomize(layer, rng)
  enhanced, voting_maps = layer(x, training=False)
  expected_enhanced, expected_voting_maps = _reference_jgr(layer, x)
  np.testing.assert_allclose(_numpy(voting_maps), expected_voting_maps,
                             atol=1e-6)
  np.testing.assert_allclose(_numpy(voting_maps).sum(axis=(1, 2)), 1.0,
                             atol=1e-5)
  np.testing.assert_allclose(_numpy(enhanced), expected_enhanced, atol=1e-4)


@pytest.mark.parametrize("graph", ["skeleton", "feature_similarity",
                                   "parameterized"])
def test_joint_graph_reasoning_layer_conventions(graph):
  x = np.random.default_rng(9).normal(size=(2, 6, 6, 8)).astype(np.float32)
  run_layer_test(JointGraphReasoning, _jgr_kwargs(graph), {"features": x},
                 ((2, 6, 6, 8), (2, 6, 6, NUM_JOINTS)), float32_outputs=(1,))


def test_feature_similarity_graph_is_a_row_softmax_per_sample():
  rng = np.random.default_rng(10)
  layer = JointGraphReasoning(NUM_JOINTS, "feature_similarity")
  layer.build((None, 6, 6, 8))
  joint_features = rng.normal(size=(3, NUM_JOINTS, 8)).astype(np.float32)
  # pylint: disable-next=protected-access
  connections = _numpy(layer._connection_weights(joint_features))
  assert connections.shape == (3, NUM_JOINTS, NUM_JOINTS)
  np.testing.assert_allclose(connections.sum(axis=-1), 1.0, atol=1e-6)
  assert not np.allclose(connections[0], connections[1])


def test_parameterized_graph_is_a_learned_matrix_starting_at_identity():
  layer = JointGraphReasoning(NUM_JOINTS, "parameterized")
  layer.build((None, 6, 6, 8))
  assert layer.learned_adjacency.trainable
  np.testing.assert_array_equal(_numpy(layer.learned_adjacency),
                                np.eye(NUM_JOINTS))


def test_joint_graph_reasoning_rejects_bad_graphs():
  with pytest.raises(ValueError, match="Unknown joint graph 'ring'.*skeleton"):
    JointGraphReasoning(NUM_JOINTS, "ring")
  with pytest.raises(ValueError, match="needs its"):
    JointGraphReasoning(NUM_JOINTS, "skeleton")
  with pytest.raises(ValueError, match=r"expected \(5, 5\)"):
    JointGraphReasoning(NUM_JOINTS, "skeleton", np.eye(4))
  with pytest.raises(ValueError, match="takes no adjacency"):
    JointGraphReasoning(NUM_JOINTS, "parameterized", np.eye(5))


# DifferentiableHeatmap (Iqbal et al.).


@pytest.mark.parametrize("convention", ["project", "authors"])
def test_differentiable_heatmap_is_soft_argmax_and_weighted_depth(convention):
  rng = np.random.default_rng(11)
  x = rng.normal(size=(2, 6, 6, 8)).astype(np.float32)
  layer = DifferentiableHeatmap(NUM_JOINTS, convention)
  joints, heat_maps, depth_maps = (_numpy(t) for t in layer(x))
  expected_heat = _spatial_softmax(x @ _kernel(layer.heatmap_conv))
  expected_depth = x @ _kernel(layer.depth_conv) + _numpy(
      layer.depth_conv.bias)
  np.testing.assert_allclose(heat_maps, expected_heat, atol=1e-6)
  np.testing.assert_allclose(depth_maps, expected_depth, atol=1e-5)
  uv = np.einsum("bhwk,hwc->bkc", expected_heat, pixel_uv(6, 6, convention))
  z = (expected_heat * expected_depth).sum(axis=(1, 2))
  np.testing.assert_allclose(joints, np.concatenate([uv, z[..., None]], -1),
                             atol=1e-5)
  # A flat heat map puts every joint at the centre of the crop.
  layer.heatmap_conv.set_weights([np.zeros((1, 1, 8, NUM_JOINTS))])
  joints, _, depth_maps = (_numpy(t) for t in layer(x))
  np.testing.assert_allclose(joints[..., :2], 0.5, atol=1e-6)
  np.testing.assert_allclose(joints[..., 2], depth_maps.mean(axis=(1, 2)),
                             atol=1e-6)


def test_differentiable_heatmap_layer_conventions():
  x = np.random.default_rng(12).normal(size=(2, 6, 6, 8)).astype(np.float32)
  run_layer_test(DifferentiableHeatmap, {"num_joints": NUM_JOINTS},
                 {"features": x},
                 ((2, NUM_JOINTS, 3), (2, 6, 6, NUM_JOINTS),
                  (2, 6, 6, NUM_JOINTS)), float32_outputs=(0, 1, 2))


# fused_batch_norm.BatchNormalization: Keras' layer, fused kernel on TF.


def _batch_norm_pair(channels, **kwargs):
  """Keras' batch normalization and the project's, with the same weights."""
  rng = np.random.default_rng(5)
  layers = (keras.layers.BatchNormalization(**kwargs),
            fused_batch_norm.BatchNormalization(**kwargs))
  weights = None
  for layer in layers:
    layer.build((None, 6, 7, channels))
    weights = weights or [rng.uniform(0.5, 2.0, w.shape).astype(np.float32)
                          for w in layer.weights]
    layer.set_weights(weights)
  return layers


def _training_call(layer, x, weight):
  """(outputs, gradients of Σ weight·y² w.r.t. x, γ, β, new statistics)."""
  trainable = [v.value for v in layer.trainable_variables]
  non_trainable = [v.value for v in layer.non_trainable_variables]

  def loss(inputs, trainable):
    y, statistics = layer.stateless_call(trainable, non_trainable, inputs,
                                         training=True)
    return ops.sum(weight * y * y), (y, statistics)

  if keras.backend.backend() == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    x = tf.constant(x)
    with tf.GradientTape() as tape:
      tape.watch([x] + trainable)
      value, (y, statistics) = loss(x, trainable)
    gradients = tape.gradient(value, [x] + trainable)
  else:
    import jax  # pylint: disable=g-import-not-at-top
    (_, (y, statistics)), (dx, dw) = jax.value_and_grad(
        loss, argnums=(0, 1), has_aux=True)(x, trainable)
    gradients = [dx] + list(dw)
  return [_numpy(t) for t in [y] + gradients + list(statistics)]


@pytest.mark.parametrize("scale_center", [True, False])
def test_fused_batch_normalization_is_keras_batch_normalization(
    scale_center):
  # Off-centre activations: a one-pass variance would lose digits here.
  rng = np.random.default_rng(6)
  x = rng.normal(3.0, 2.0, (4, 6, 7, 5)).astype(np.float32)
  weight = rng.uniform(size=x.shape).astype(np.float32)
  keras_bn, fused_bn = _batch_norm_pair(
      5, momentum=0.9, epsilon=1e-3, scale=scale_center, center=scale_center)
  expected = _training_call(keras_bn, x, weight)
  actual = _training_call(fused_bn, x, weight)
  # y, ∂/∂x, [∂/∂γ, ∂/∂β], moving mean, moving variance.
  assert len(actual) == len(expected) == 4 + 2 * scale_center
  for got, want in zip(actual, expected):
    np.testing.assert_allclose(got, want, rtol=1e-4,
                               atol=1e-4 * np.abs(want).max())
  # The batch's statistics, biased variance: what the moving ones average.
  mean, variance = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  moving_mean, moving_variance = [w.numpy() for w in (
      keras_bn.moving_mean, keras_bn.moving_variance)]
  np.testing.assert_allclose(actual[-2], 0.9 * moving_mean + 0.1 * mean,
                             rtol=1e-5)
  np.testing.assert_allclose(actual[-1],
                             0.9 * moving_variance + 0.1 * variance,
                             rtol=1e-5)
  # Inference: the moving statistics, the same on both.
  np.testing.assert_allclose(_numpy(fused_bn(x)), _numpy(keras_bn(x)),
                             rtol=1e-5, atol=1e-5)


def test_fused_batch_normalization_updates_its_variables_when_called():
  x = np.random.default_rng(7).normal(1.0, 1.5, (3, 4, 4, 2)).astype(
      np.float32)
  keras_bn, fused_bn = _batch_norm_pair(2, momentum=0.8)
  for layer in (keras_bn, fused_bn):
    for _ in range(2):
      layer(x, training=True)
  np.testing.assert_allclose(fused_bn.moving_mean.numpy(),
                             keras_bn.moving_mean.numpy(), rtol=1e-5)
  np.testing.assert_allclose(fused_bn.moving_variance.numpy(),
                             keras_bn.moving_variance.numpy(), rtol=1e-5)


def test_fused_batch_normalization_layer_conventions():
  x = np.random.default_rng(8).normal(size=(2, 5, 5, 3)).astype(np.float32)
  run_layer_test(fused_batch_norm.BatchNormalization, {"momentum": 0.95},
                 {"inputs": x}, (2, 5, 5, 3))


# conv2d.Conv2D: Keras' layer, a 1×1 kernel as a matrix product.


@pytest.mark.parametrize("kernel_size,strides,use_bias", [
    (1, 1, False), (1, 1, True), (1, 2, False), (3, 1, True)])
def test_conv2d_is_keras_convolution(kernel_size, strides, use_bias):
  rng = np.random.default_rng(10)
  x = rng.normal(size=(2, 6, 8, 5)).astype(np.float32)
  arguments = dict(filters=4, kernel_size=kernel_size, strides=strides,
                   padding="same", use_bias=use_bias)
  ours, keras_conv = conv2d.Conv2D(**arguments), keras.layers.Conv2D(
      **arguments)
  for layer in (ours, keras_conv):
    layer.build(x.shape)
  keras_conv.set_weights(ours.get_weights())
  weights = rng.normal(size=ours.compute_output_shape(x.shape)).astype(
      np.float32)
  loss = lambda y: ops.sum(ops.convert_to_tensor(weights) * y)
  np.testing.assert_allclose(_numpy(ours(x)), _numpy(keras_conv(x)),
                             rtol=1e-5, atol=1e-5)
  # In a model: the gradient helper calls with training=True.
  as_model = lambda layer: keras.Sequential([keras.Input(x.shape[1:]), layer])
  for got, want in zip(
      trainable_gradients(as_model(ours), loss, x),
      trainable_gradients(as_model(keras_conv), loss, x)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv2d_layer_conventions():
  x = np.random.default_rng(11).normal(size=(2, 5, 5, 3)).astype(np.float32)
  run_layer_test(conv2d.Conv2D, {"filters": 4, "kernel_size": 1},
                 {"inputs": x}, (2, 5, 5, 4))


def test_models_saved_with_keras_layers_load(tmp_path):
  # Runs trained before the project had its own layers hold Keras' ones.
  def network(conv, batch_norm):
    inputs = keras.Input((6, 6, 2))
    x = conv(3, 3, name="conv")(inputs)
    x = batch_norm(name="bn")(x)
    return keras.Model(inputs, conv(2, 1, name="pointwise")(x))

  saved = network(keras.layers.Conv2D, keras.layers.BatchNormalization)
  rng = np.random.default_rng(9)
  saved.set_weights([rng.normal(size=w.shape).astype(np.float32)
                     for w in saved.weights])
  saved.save_weights(tmp_path / "keras_layers.weights.h5")
  loaded = network(conv2d.Conv2D, fused_batch_norm.BatchNormalization)
  loaded.load_weights(tmp_path / "keras_layers.weights.h5")
  for got, want in zip(loaded.get_weights(), saved.get_weights()):
    np.testing.assert_array_equal(got, want)


# Residual module, hourglass and attention module.


def _count(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_residual_block_shapes_and_weights():
  inputs = keras.Input((24, 24, 128))
  same = keras.Model(inputs, residual_block(inputs, 128, "r"))
  assert same.output.shape == (None, 24, 24, 128)
  # 1×1 128→64, 3×3 64→64, 1×1 64→128, no biases; BN γ, β per channel.
  assert _count(same) == 128 * 64 + 9 * 64 * 64 + 64 * 128 + 2 * (
      64 + 64 + 128)
  inputs = keras.Input((24, 24, 64))
  wider = keras.Model(inputs, residual_block(inputs, 128, "r"))
  assert _count(wider) == 64 * 64 + 9 * 64 * 64 + 64 * 128 + 2 * (
      64 + 64 + 128) + 64 * 128 + 2 * 128
  with pytest.raises(ValueError, match="even number of filters"):
    residual_block(inputs, 7, "odd")


def test_hourglass_keeps_the_shape_and_holds_three_residuals_per_level():
  inputs = keras.Input((24, 24, 16))
  model = keras.Model(inputs, hourglass(inputs, 3, "hg"))
  assert model.output.shape == (None, 24, 24, 16)
  residual_outputs = [l.name for l in model.layers if l.name.endswith("_out")]
  assert len(residual_outputs) == 9
  assert "hg_level1_down_out" in residual_outputs
  x = np.random.default_rng(13).normal(size=(1, 24, 24, 16))
  assert np.all(np.isfinite(_numpy(model(x.astype(np.float32)))))
  with pytest.raises(ValueError, match="multiples of 8, got 20×20"):
    hourglass(keras.Input((20, 20, 16)), 3, "bad")


def test_attention_voting_maps_are_normalized_per_joint():
  inputs = keras.Input((8, 8, 16))
  model = keras.Model(inputs, attention_voting_maps(inputs, NUM_JOINTS, "att"))
  x = np.random.default_rng(14).normal(size=(2, 8, 8, 16)).astype(np.float32)
  weights = _numpy(model(x))
  assert weights.shape == (2, 8, 8, NUM_JOINTS)
  np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, atol=1e-5)
  assert model.get_layer("att_softmax").dtype_policy.name == "float32"
