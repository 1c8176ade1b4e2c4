"""JGR-P2O: a stacked-hourglass network with a JGR + P2O head per stack.

``build_model`` returns a functional Keras model (Figure 1):

  stem: C(7×7/2) → R → P(2×2) → R → R, a 96×96 crop → 24×24 × num_features;
  each stack s: hourglass of order 3 → R → head, where the head is one of
    "jgr": the JGR module (Sec. 3.2) then the P2O module (Sec. 3.3);
    "p2o": no JGR module; the voting maps come from a 1×1 convolution and a
      spatial softmax on the backbone features (the "P2O" rows of Table 2);
    "attention": the attention baseline of Figure 3 — a residual module, a
      1×1 convolution and a spatial softmax give the voting maps, and a
      residual module precedes the P2O convolution;
    "dhm": the JGR module then, in place of P2O, the differentiable 2.5D
      heat maps of Iqbal et al. (Table 4);
  between stacks: the next stack's input is the previous one plus C(1×1) of
    the head's features plus C(1×1) of its predictions (the offset maps, or
    for "dhm" the heat and latent depth maps).

Here C is a convolution + BN + ReLU, R the bottleneck residual module and P a
max pooling (2×2 in the stem, 3×3 with stride 2 in the hourglass). The input
side must be a multiple of ``INPUT_SIZE_MULTIPLE`` = 32: the stem divides it
by 4 and the hourglass halves the result three times.

Where the paper is silent, the layers follow the authors' TensorFlow 1 code
(hourglass pooling, φ' of Eq. 2 with BN and ReLU, the order of τ's inputs and
of the offset channels), so that their released checkpoints import as they
are (``jgr_p2o_tf.import_checkpoint``, with ``coordinate_convention=
"authors"``).

Every stack is supervised (Eq. 9), so the model returns one dict per stack:
  "joints_uvz": (B, N, 3) normalized UVZ of the joints, in the model's
    coordinate convention (``geometry.COORDINATE_CONVENTIONS``);
  "offset_maps": (B, h, w, N, 3) offsets from each output pixel to each joint
    (absent for "dhm", which predicts none);
  "voting_maps": (B, h, w, N) the weights of the pixels in each joint's
    estimate (for "dhm": the 2D heat maps);
with h = w = input_size / 4. The outputs are float32 under any dtype policy.

Parameter counts for 14 joints, a 96×96 crop and 128 features, trainable /
all weights (the latter with the BN moving statistics): 1, 2 and 3 stacks
715,488 / 722,848, 1,365,216 / 1,378,976 and 2,014,944 / 2,035,104, where the
paper reports 0.72M, 1.37M and 2.02M (Table 3); each stack adds 649,728
trainable weights (hourglass 483,840, its output residual 53,760, JGR 84,480,
P2O 5,376, links to the next stack 22,272) and the stem holds 88,032. The
authors' checkpoints hold 224 trainable weights more for two stacks: the
biases of their voting convolutions (28; they cancel in the spatial softmax)
and an unused 14 × 14 variable (196). The other graphs and heads are counted
in tests/test_model.py.
"""

import keras
import numpy as np

from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.layers import conv2d
from jgr_p2o_tf.layers.attention_head import attention_voting_maps
from jgr_p2o_tf.layers.differentiable_heatmap import DifferentiableHeatmap
from jgr_p2o_tf.layers.hourglass import hourglass
from jgr_p2o_tf.layers.initializers import small_kernel_initializer
from jgr_p2o_tf.layers.joint_graph_reasoning import GRAPHS
from jgr_p2o_tf.layers.joint_graph_reasoning import JointGraphReasoning
from jgr_p2o_tf.layers.output_grid import OUTPUT_STRIDE
from jgr_p2o_tf.layers.pixel_to_offset import PixelToOffset
from jgr_p2o_tf.layers.residual import conv_bn
from jgr_p2o_tf.layers.residual import residual_block
from jgr_p2o_tf.layers.spatial_softmax import SpatialSoftmax

HEADS = ("jgr", "p2o", "attention", "dhm")
HOURGLASS_ORDER = 3
INPUT_SIZE_MULTIPLE = OUTPUT_STRIDE * 2**HOURGLASS_ORDER


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class StackOutputsModel(keras.Model):
  """A functional model that always returns a list, one dict per stack.

  A functional Keras model returns the only element of a one-element output
  list by itself; this one keeps the list, also for a single stack. It is the
  class of graphs derived from a JGRP2OModel (e.g. with batch norms folded).
  """

  def call(self, inputs, training=None, mask=None):
    outputs = super().call(inputs, training=training, mask=mask)
    return outputs if isinstance(outputs, list) else [outputs]


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class JGRP2OModel(StackOutputsModel):
  """JGR-P2O, built from the arguments of ``build_model``.

  The constructor builds the functional graph (``build_model`` documents the
  arguments); ``get_config`` returns those arguments and ``from_config``
  builds the graph again, so a saved model is its arguments plus its weights
  (found by layer name), and a copy of ``model`` computing under another
  dtype policy is ``JGRP2OModel.from_config({**model.get_config(),
  "dtype": "mixed_bfloat16"})``.

  Args:
    num_joints, num_stacks, graph, head, num_features, input_size, skeleton,
      coordinate_convention: see ``build_model``.
    dtype: the dtype policy the layers are built under (its name, e.g.
      "mixed_bfloat16"); Keras' global policy when None.
    name, trainable: base Model arguments.
  """

  def __init__(self, num_joints, *, num_stacks=2, graph="skeleton",
               head="jgr", num_features=128, input_size=96, skeleton=None,
               coordinate_convention="project", dtype=None, name=None,
               trainable=True):
    if isinstance(skeleton, dict):
      skeleton = skeletons.Skeleton(
          skeleton["name"], tuple(skeleton["joint_names"]),
          tuple(tuple(bone) for bone in skeleton["bones"]))
    previous = keras.config.dtype_policy()
    if dtype is not None:
      keras.config.set_dtype_policy(dtype)
    try:
      depth_crop, outputs = _build_graph(
          num_joints, num_stacks, graph, head, num_features, input_size,
          skeleton, coordinate_convention)
      super().__init__(depth_crop, outputs, name=name or f"jgr_p2o_{head}",
                       trainable=trainable)
    finally:
      keras.config.set_dtype_policy(previous)
    self.num_joints = num_joints
    self.num_stacks = num_stacks
    self.graph = graph
    self.head = head
    self.num_features = num_features
    self.input_size = input_size
    self.skeleton = skeleton
    self.coordinate_convention = coordinate_convention

  def get_config(self):
    skeleton = self.skeleton
    if isinstance(skeleton, skeletons.Skeleton):
      skeleton = (skeleton.name if skeletons.SKELETONS.get(skeleton.name)
                  == skeleton else {"name": skeleton.name,
                                    "joint_names": list(skeleton.joint_names),
                                    "bones": [list(b) for b in skeleton.bones]})
    return {
        "name": self.name,
        "trainable": self.trainable,
        "dtype": self.dtype_policy.name,
        "num_joints": self.num_joints,
        "num_stacks": self.num_stacks,
        "graph": self.graph,
        "head": self.head,
        "num_features": self.num_features,
        "input_size": self.input_size,
        "skeleton": skeleton,
        "coordinate_convention": self.coordinate_convention,
    }

  @classmethod
  def from_config(cls, config):
    if "layers" in config:
      raise ValueError(
          "This model was saved as a layer graph by an earlier version of "
          "jgr_p2o_tf, whose architecture differs from this one's; train it "
          "again.")
    return cls(**config)


def _is_positive_int(value):
  return isinstance(value, (int, np.integer)) and not isinstance(
      value, bool) and value > 0


def _check_arguments(num_joints, num_stacks, graph, head, num_features,
                     input_size, coordinate_convention):
  if not _is_positive_int(num_joints):
    raise ValueError(f"num_joints must be a positive integer, got "
                     f"{num_joints!r}.")
  if not _is_positive_int(num_stacks):
    raise ValueError(f"num_stacks must be a positive integer, got "
                     f"{num_stacks!r}.")
  if graph not in GRAPHS:
    raise ValueError(f"Unknown graph {graph!r}; expected one of "
                     f"{list(GRAPHS)}.")
  if head not in HEADS:
    raise ValueError(f"Unknown head {head!r}; expected one of {list(HEADS)}.")
  if not _is_positive_int(num_features) or num_features % 4:
    raise ValueError(f"num_features must be a positive multiple of 4 (the "
                     f"stem has num_features/4 and num_features/2 channels), "
                     f"got {num_features!r}.")
  if not _is_positive_int(input_size) or input_size % INPUT_SIZE_MULTIPLE:
    raise ValueError(
        f"input_size must be a positive multiple of {INPUT_SIZE_MULTIPLE} "
        f"(the stem's stride {OUTPUT_STRIDE} times 2^{HOURGLASS_ORDER} for "
        f"the hourglass's poolings), e.g. 96; got {input_size!r}.")
  geometry.check_convention(coordinate_convention)


def skeleton_adjacency(num_joints, skeleton=None):
  """The normalized adjacency D^-1/2 (A + I) D^-1/2 of the skeleton graph.

  Args:
    num_joints: N.
    skeleton: a dataset name of ``skeletons.SKELETONS`` or a Skeleton; when
      None, the known skeletons with N joints, provided they all have the same
      bones (21 joints: "msra" and "synthetic" do).

  Returns:
    (N, N) float32 NumPy array.

  Raises:
    ValueError: unknown skeleton, a skeleton with another joint count, or no
      or several different known skeletons with N joints.
  """
  if skeleton is not None:
    skeleton = skeletons.get_skeleton(skeleton)
    if skeleton.num_joints != num_joints:
      raise ValueError(f"Skeleton {skeleton.name!r} has {skeleton.num_joints} "
                       f"joints but num_joints is {num_joints}.")
    return skeleton.normalized_adjacency()
  counts = {s.name: s.num_joints for s in skeletons.SKELETONS.values()}
  matches = [s for s in skeletons.SKELETONS.values()
             if s.num_joints == num_joints]
  if not matches:
    raise ValueError(f"No known skeleton has {num_joints} joints (known: "
                     f"{counts}); pass skeleton=, a Skeleton with your bones.")
  adjacency = matches[0].normalized_adjacency()
  if any(not np.array_equal(adjacency, s.normalized_adjacency())
         for s in matches[1:]):
    raise ValueError(f"Several skeletons with different bones have "
                     f"{num_joints} joints: {[s.name for s in matches]}; "
                     f"pass skeleton= one of them.")
  return adjacency


def _stem(depth_crop, num_features):
  """C(7×7/2) → R → P → R → R: (B, S, S, 1) → (B, S/4, S/4, num_features)."""
  x = conv_bn(depth_crop, num_features // 4, 7, "stem", strides=2)
  x = residual_block(x, num_features // 2, "stem_residual1")
  x = keras.layers.MaxPooling2D(2, name="stem_pool")(x)
  x = residual_block(x, num_features // 2, "stem_residual2")
  return residual_block(x, num_features, "stem_residual3")


def _head(head, features, depth_crop, num_joints, graph, adjacency,
          convention, prefix):
  """One stack's head: (head features, predictions, stack outputs)."""
  if head in ("jgr", "dhm"):
    enhanced, voting_maps = JointGraphReasoning(
        num_joints, graph, adjacency if graph == "skeleton" else None,
        name=f"{prefix}_jgr")(features)
  elif head == "p2o":
    enhanced = features
    logits = conv2d.Conv2D(
        num_joints, 1, use_bias=False,
        kernel_initializer=small_kernel_initializer(),
        name=f"{prefix}_voting_conv")(features)
    voting_maps = SpatialSoftmax(name=f"{prefix}_voting_softmax")(logits)
  else:
    voting_maps = attention_voting_maps(features, num_joints,
                                        f"{prefix}_attention")
    enhanced = residual_block(features, features.shape[-1],
                              f"{prefix}_offset_residual")

  if head == "dhm":
    joints_uvz, heat_maps, depth_maps = DifferentiableHeatmap(
        num_joints, convention, name=f"{prefix}_dhm")(enhanced)
    predictions = keras.layers.Concatenate(name=f"{prefix}_dhm_maps")(
        [heat_maps, depth_maps])
    return enhanced, predictions, {"joints_uvz": joints_uvz,
                                   "voting_maps": heat_maps}

  joints_uvz, offset_maps = PixelToOffset(
      num_joints, convention, name=f"{prefix}_p2o")(
          enhanced, voting_maps, depth_crop)
  # The offset convolution's channels again: all Δu, all Δv, all Δz.
  height, width = features.shape[1:3]
  predictions = keras.layers.Reshape(
      (height, width, 3 * num_joints), name=f"{prefix}_offset_channels")(
          keras.layers.Permute((1, 2, 4, 3), name=f"{prefix}_offsets_by_axis")(
              offset_maps))
  return enhanced, predictions, {"joints_uvz": joints_uvz,
                                 "offset_maps": offset_maps,
                                 "voting_maps": voting_maps}


def build_model(num_joints, *, num_stacks=2, graph="skeleton", head="jgr",
                num_features=128, input_size=96, skeleton=None,
                coordinate_convention="project"):
  """Builds JGR-P2O or one of its ablations as a functional Keras model.

  Args:
    num_joints: N, the joints of the dataset's layout.
    num_stacks: hourglasses stacked (2 in the paper; 1–3 in Table 3).
    graph: the JGR module's graph, one of ``GRAPHS`` (Table 1); used by the
      "jgr" and "dhm" heads.
    head: one of ``HEADS`` (Tables 2 and 4; see the module docstring).
    num_features: channels of the backbone (128); a multiple of 4.
    input_size: side S of the square normalized depth crop; a multiple of 32.
    skeleton: dataset name ("nyu", "icvl", "msra", "synthetic") or Skeleton
      whose bones define the "skeleton" graph; when None, it is looked up by
      joint count (see ``skeleton_adjacency``). Must have N joints if given.
    coordinate_convention: one of ``geometry.COORDINATE_CONVENTIONS``: the
      normalized UVZ the model predicts and its output grid ("project", or
      "authors" for the weights of the authors' code).

  Returns:
    A JGRP2OModel from the (B, S, S, 1) float32 normalized depth crop
    "depth_crop" to a list, one per stack, of dicts of outputs (module
    docstring).

  Raises:
    ValueError: an argument is not one of those allowed.
  """
  return JGRP2OModel(
      num_joints, num_stacks=num_stacks, graph=graph, head=head,
      num_features=num_features, input_size=input_size, skeleton=skeleton,
      coordinate_convention=coordinate_convention)


def _build_graph(num_joints, num_stacks, graph, head, num_features,
                 input_size, skeleton, coordinate_convention):
  """The input and the per-stack outputs of ``build_model``'s graph."""
  _check_arguments(num_joints, num_stacks, graph, head, num_features,
                   input_size, coordinate_convention)
  # A skeleton passed in is checked even where the graph does not use it.
  uses_skeleton = head in ("jgr", "dhm") and graph == "skeleton"
  adjacency = None
  if uses_skeleton or skeleton is not None:
    adjacency = skeleton_adjacency(num_joints, skeleton)

  depth_crop = keras.Input((input_size, input_size, 1), dtype="float32",
                           name="depth_crop")
  x = _stem(depth_crop, num_features)
  outputs = []
  for stack in range(1, num_stacks + 1):
    prefix = f"stack{stack}"
    features = hourglass(x, HOURGLASS_ORDER, f"{prefix}_hourglass")
    features = residual_block(features, num_features, f"{prefix}_features")
    enhanced, predictions, stack_outputs = _head(
        head, features, depth_crop, num_joints, graph, adjacency,
        coordinate_convention, prefix)
    outputs.append({
        key: keras.layers.Identity(dtype="float32", name=f"{prefix}_{key}")(
            value) for key, value in stack_outputs.items()})
    if stack < num_stacks:
      x = keras.layers.Add(name=f"stack{stack + 1}_input")([
          x,
          conv_bn(enhanced, num_features, 1, f"{prefix}_feature_remap"),
          conv_bn(predictions, num_features, 1, f"{prefix}_prediction_remap"),
      ])
  return depth_crop, outputs
