"""Centre voting: the centre refiner's output, a weighted vote of its pixels.

Each output pixel k of the refiner (``centre_refiner``) sits at a point
``p_k`` of the crop, in units of the refiner cube's half edges about the crop
centre (the rough centre): ``p_k = (2u_k − 1, 2v_k − 1, z_k)`` with ``u_k, v_k``
its normalized UV and ``z_k`` its normalized depth (``output_grid.pixel_uvz``).
It votes for the hand centre at ``p_k + Δ_k`` with weight ``w_k``, and the
offset from the rough centre to the hand centre is the weighted mean

  ``o = Σ_k softmax(w)_k (p_k + Δ_k)``,

the pixel-to-offset idea of JGR-P2O (Eq. 6) for one point. Voting makes the
refiner translation-equivariant: a hand seen farther from the crop centre
moves its pixels, and so their votes, with it.

Pixels whose whole block is background (normalized depth 1: nothing inside
the cube) cannot be on the hand and do not vote, so that an untrained
refiner already returns the mean point of what the crop holds, and training
starts from a centre of mass rather than from the empty crop's middle. A
crop with nothing in it gives every pixel the same weight.
"""

import keras
from keras import ops

from jgr_p2o_tf.layers.output_grid import pixel_uvz

# The weight logit of a background pixel: exp() of it, after the softmax
# subtracts the largest logit, is 0 in float32.
_NO_VOTE = -1e4


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class CentreVoting(keras.layers.Layer):
  """Per-pixel votes → (B, 3) offset in units of the cube's half edges.

  Inputs: ``votes`` (B, h, w, 4): the weight logit and Δx, Δy, Δz of each
  output pixel; ``depth_crop`` (B, S, S, 1) the refiner's input, S = h ·
  stride. Output (B, 3). Computes in float32.
  """

  def __init__(self, **kwargs):
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)

  def call(self, votes, depth_crop):
    votes = ops.cast(votes, "float32")
    height, width = votes.shape[1], votes.shape[2]
    uvz = pixel_uvz(depth_crop, stride=depth_crop.shape[1] // height)
    points = ops.concatenate([uvz[..., :2] * 2.0 - 1.0, uvz[..., 2:]], axis=-1)
    logits = ops.where(uvz[..., 2] < 1.0, votes[..., 0], _NO_VOTE)
    logits = ops.reshape(logits, (-1, height * width))
    weights = ops.softmax(logits, axis=-1)
    targets = ops.reshape(points + votes[..., 1:], (-1, height * width, 3))
    return ops.sum(weights[..., None] * targets, axis=1)

  def compute_output_shape(self, votes_shape, depth_crop_shape):
    return (votes_shape[0], 3)
