"""The GCN-based joint graph reasoning (JGR) module (Sec. 3.2, Figure 2)."""

import keras
import numpy as np
from keras import ops

from jgr_p2o_tf.layers import conv2d
from jgr_p2o_tf.layers.initializers import small_kernel_initializer
from jgr_p2o_tf.layers.residual import batch_normalization
from jgr_p2o_tf.layers.spatial_softmax import SpatialSoftmax

GRAPHS = ("skeleton", "feature_similarity", "parameterized")


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class JointGraphReasoning(keras.layers.Layer):
  """Augments every pixel's features with the evolved features of the joints.

  With X the (H·W, C) local features, x_i the features of pixel i and N joints:

  * pixel-to-joint voting, Eq. 1–2: ``W = Φ(φ(X))`` with φ a 1×1 convolution
    to N channels and Φ the spatial softmax, then the joint features
    ``f_k = Σ_i w_ki φ'(x_i)`` with φ' a 1×1 convolution C → C + BN + ReLU;
  * graph reasoning, Eq. 3: ``F^e = ReLU(A^e F W^e)``, W^e a C × C matrix and
    A^e, the connection weights, given by ``graph``:
      - "skeleton": the fixed ``D^-1/2 (A + I) D^-1/2`` of the hand's bones,
        passed in as ``adjacency``;
      - "feature_similarity": per sample, ``a_ij = softmax_j(ν(f_i)^T ψ(f_j))``
        with ν and ψ fully connected C → C;
      - "parameterized": an N × N matrix learned with the other weights
        (initialized to the identity);
  * joint-to-pixel mapping, Eq. 4: the joint context
    ``c_i = ρ((1/N) Σ_k w_ik f^e_k)``, ρ a 1×1 convolution + BN + ReLU;
  * local feature enhancement, Eq. 5: ``x̄_i = τ([x_i, c_i])``, τ a 1×1
    convolution (2C → C) + BN + ReLU.

  Where the paper leaves details open (φ' with a BN and a ReLU, the order of
  τ's inputs), they are those of the authors' code, so that their trained
  weights load as they are (``jgr_p2o_tf.import_checkpoint``).

  The voting (Eq. 2) and the mapping back (Eq. 4), weighted averages over the
  pixels, and the softmaxes run in float32 under mixed precision. φ, W^e, ν
  and ψ, which no BN follows, start from small kernels (TruncatedNormal
  σ = 0.01, see ``initializers``): near-uniform voting maps and graph weights.

  Args:
    num_joints: N.
    graph: one of ``GRAPHS``.
    adjacency: (N, N) normalized adjacency matrix (array or nested lists), for
      the "skeleton" graph only, e.g. ``Skeleton.normalized_adjacency()``.
    **kwargs: base Layer arguments (name, dtype, ...).

  Call arguments:
    features: (B, H, W, C) local features X.
    training: whether the batch normalizations use the batch statistics.

  Returns:
    (enhanced features X̄ (B, H, W, C), voting maps W (B, H, W, N) float32).
  """

  def __init__(self, num_joints, graph="skeleton", adjacency=None, **kwargs):
    super().__init__(**kwargs)
    if graph not in GRAPHS:
      raise ValueError(f"Unknown joint graph {graph!r}; expected one of "
                       f"{list(GRAPHS)}.")
    if graph == "skeleton":
      if adjacency is None:
        raise ValueError("The 'skeleton' graph needs its (num_joints, "
                         "num_joints) normalized adjacency matrix.")
      adjacency = np.asarray(adjacency, np.float32)
      if adjacency.shape != (num_joints, num_joints):
        raise ValueError(f"The adjacency matrix has shape {adjacency.shape}; "
                         f"expected ({num_joints}, {num_joints}).")
    elif adjacency is not None:
      raise ValueError(f"The {graph!r} graph takes no adjacency matrix; only "
                       "the 'skeleton' graph does.")
    self.num_joints = num_joints
    self.graph = graph
    self.adjacency = adjacency

  def _conv(self, filters, name, before_bn=True):
    initializer = "glorot_uniform" if before_bn else small_kernel_initializer()
    return conv2d.Conv2D(filters, 1, use_bias=False,
                         kernel_initializer=initializer,
                         dtype=self.dtype_policy, name=name)

  def _dense(self, units, name):
    return keras.layers.Dense(units, use_bias=False,
                              kernel_initializer=small_kernel_initializer(),
                              dtype=self.dtype_policy, name=name)

  def build(self, input_shape):
    channels = input_shape[-1]
    joints_shape = (input_shape[0], self.num_joints, channels)
    # φ has no bias: a constant per channel would cancel in the softmax. The
    # convolutions before a BN have none either: the BN's β is the shift.
    self.voting_conv = self._conv(self.num_joints, "voting_conv",
                                  before_bn=False)
    self.spatial_softmax = SpatialSoftmax(name="spatial_softmax")
    self.pixel_transform = self._conv(channels, "pixel_transform")
    self.pixel_transform_bn = batch_normalization("pixel_transform_bn",
                                                  self.dtype_policy)
    self.graph_transform = self._dense(channels, "graph_transform")
    self.context_conv = self._conv(channels, "context_conv")
    self.context_bn = batch_normalization("context_bn", self.dtype_policy)
    self.fusion_conv = self._conv(channels, "fusion_conv")
    self.fusion_bn = batch_normalization("fusion_bn", self.dtype_policy)

    self.voting_conv.build(input_shape)
    self.pixel_transform.build(input_shape)
    self.pixel_transform_bn.build(input_shape)
    self.graph_transform.build(joints_shape)
    self.context_conv.build(input_shape)
    self.context_bn.build(input_shape)
    self.fusion_conv.build(tuple(input_shape[:-1]) + (2 * channels,))
    self.fusion_bn.build(input_shape)
    if self.graph == "feature_similarity":
      # ν and ψ have no biases: ψ's would cancel in the softmax over j.
      self.similarity_nu = self._dense(channels, "similarity_nu")
      self.similarity_psi = self._dense(channels, "similarity_psi")
      self.similarity_nu.build(joints_shape)
      self.similarity_psi.build(joints_shape)
    elif self.graph == "parameterized":
      self.learned_adjacency = self.add_weight(
          shape=(self.num_joints, self.num_joints), initializer="identity",
          name="adjacency")

  def _connection_weights(self, joint_features):
    """A^e: (N, N) or, for feature similarity, (B, N, N)."""
    if self.graph == "skeleton":
      return ops.convert_to_tensor(self.adjacency)
    if self.graph == "parameterized":
      return ops.cast(self.learned_adjacency, "float32")
    nu = ops.cast(self.similarity_nu(joint_features), "float32")
    psi = ops.cast(self.similarity_psi(joint_features), "float32")
    return ops.softmax(ops.einsum("bic,bjc->bij", nu, psi), axis=-1)

  def call(self, features, training=None):
    height, width, channels = features.shape[1:]
    pixels = height * width
    # Pixel-to-joint voting (Eq. 1–2), a weighted average in float32.
    voting_maps = self.spatial_softmax(self.voting_conv(features))
    votes = ops.reshape(voting_maps, (-1, pixels, self.num_joints))
    transformed = ops.relu(self.pixel_transform_bn(
        self.pixel_transform(features), training=training))
    transformed = ops.reshape(ops.cast(transformed, "float32"),
                              (-1, pixels, channels))
    joint_features = ops.cast(
        ops.einsum("bpk,bpc->bkc", votes, transformed), self.compute_dtype)

    # Graph reasoning (Eq. 3).
    connections = ops.cast(self._connection_weights(joint_features),
                           self.compute_dtype)
    evolved = ops.relu(
        ops.matmul(connections, self.graph_transform(joint_features)))

    # Joint-to-pixel mapping (Eq. 4), the mean over the joints in float32.
    context = ops.einsum("bpk,bkc->bpc", votes,
                         ops.cast(evolved, "float32")) / self.num_joints
    context = ops.reshape(ops.cast(context, self.compute_dtype),
                          (-1, height, width, channels))
    context = ops.relu(
        self.context_bn(self.context_conv(context), training=training))

    # Local feature enhancement (Eq. 5).
    fused = self.fusion_conv(ops.concatenate([features, context], axis=-1))
    enhanced = ops.relu(self.fusion_bn(fused, training=training))
    return enhanced, voting_maps

  def compute_output_shape(self, input_shape):
    return input_shape, tuple(input_shape[:-1]) + (self.num_joints,)

  def get_config(self):
    config = super().get_config()
    config.update({
        "num_joints": self.num_joints,
        "graph": self.graph,
        "adjacency": (None if self.adjacency is None
                      else self.adjacency.tolist()),
    })
    return config
