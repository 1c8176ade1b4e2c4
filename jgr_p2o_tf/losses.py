"""The training loss of JGR-P2O (Sec. 3.4, Eq. 7–9).

  L = Σ_s L_coordinate^(s) + β L_offset^(s), with
  L_coordinate = Σ_k Σ_c L_δ(c_k − c_k*)            (Eq. 7)
  L_offset = Σ_k Σ_i Σ_c L_δ(Δc_ki − Δc_ki*)        (Eq. 8)

over the stacks s, joints k, pixels i of the output grid and coordinates
c ∈ {u, v, z}, all normalized in the model's coordinate convention
(ARCHITECTURE.md, ``geometry.COORDINATE_CONVENTIONS``); L_δ is the Huber loss.
Each term is summed over joints, pixels and coordinates, then averaged over
the batch (``reduction="mean"``, this project's) or summed over it ("sum",
the authors' code, whose Huber terms are one ``reduce_sum`` over the batch:
there the L2 weight decay weighs 1/B as much against the data term as with
the mean).
Everything is computed in float32, whatever the model's dtype policy.
"""

from keras import ops

from jgr_p2o_tf import train_config
from jgr_p2o_tf.layers.output_grid import OUTPUT_STRIDE
from jgr_p2o_tf.layers.output_grid import pixel_uvz

# δ of the Huber loss on normalized coordinates, as in the authors' code.
HUBER_DELTA = 0.01
# β of Eq. 9.
OFFSET_LOSS_WEIGHT = 1e-4
# How the per-sample losses of a batch become one.
REDUCTIONS = train_config.LOSS_REDUCTIONS


def huber(x, delta=HUBER_DELTA):
  """Elementwise Huber loss: x²/2 for |x| ≤ δ, δ(|x| − δ/2) beyond.

  Both cases are q(x − q/2) with q = clip(x, −δ, δ), and the derivative is
  q, which is given to autodiff (``ops.custom_gradient``). Differentiated
  by autodiff, a formula with a minimum or a clip selects elementwise for
  each bound and sums a gradient for δ over the whole tensor: on a CPU the
  loss of a batch-64 train step (offset maps of 7 MB a stack) then took
  twice as long, forward and backward (32 vs 15 ms).
  """

  @ops.custom_gradient
  def huber_of(x):
    clipped = ops.clip(x, -delta, delta)

    def gradient(*args, upstream=None):
      # TensorFlow passes the upstream gradient by position, JAX by name.
      return (args[0] if upstream is None else upstream) * clipped

    return clipped * (x - 0.5 * clipped), gradient

  return huber_of(ops.convert_to_tensor(x))


def ground_truth_offset_maps(joints_uvz, depth_crop, stride=OUTPUT_STRIDE,
                             convention="project"):
  """Δc* of Eq. 8: the offsets from every output pixel to every joint.

  Measured from the same pixel UVZ as the P2O module uses
  (``output_grid.pixel_uvz``), so that the P2O module fed these offsets
  returns the joints exactly, whatever its voting maps.

  Args:
    joints_uvz: (B, N, 3) normalized ground-truth UVZ.
    depth_crop: (B, S, S, 1) normalized depth crop.
    stride: input pixels per output pixel.
    convention: the coordinate convention of the joints and the grid.

  Returns:
    (B, S / stride, S / stride, N, 3) float32 offset maps.
  """
  grid = pixel_uvz(depth_crop, stride, convention)
  return (ops.cast(joints_uvz, "float32")[:, None, None, :, :] -
          grid[:, :, :, None, :])


def jgr_p2o_loss(outputs, joints_uvz, depth_crop, *,
                 offset_weight=OFFSET_LOSS_WEIGHT, delta=HUBER_DELTA,
                 convention="project", reduction="mean"):
  """The loss of Eq. 9 and its parts per stack.

  A stack without "offset_maps" (the "dhm" head, which predicts none) has only
  the coordinate term; its offset part is 0.

  Args:
    outputs: the model's outputs, a list (one per stack) of dicts with
      "joints_uvz" (B, N, 3) and, except for "dhm", "offset_maps"
      (B, h, w, N, 3); a single dict is taken as one stack.
    joints_uvz: (B, N, 3) normalized ground-truth UVZ, in ``convention``.
    depth_crop: (B, S, S, 1) the normalized depth crop given to the model.
    offset_weight: β.
    delta: δ of the Huber loss.
    convention: the model's coordinate convention
      (``model.coordinate_convention``).
    reduction: "mean" or "sum" over the batch (``REDUCTIONS``).

  Returns:
    (total, parts): the scalar float32 loss and, per stack, a dict of the
    scalars "coordinate" (Eq. 7), "offset" (Eq. 8) and "total"
    (coordinate + β offset), each reduced over the batch.
  """
  if reduction not in REDUCTIONS:
    raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got "
                     f"{reduction!r}")
  reduce = ops.sum if reduction == "sum" else ops.mean
  if isinstance(outputs, dict):
    outputs = [outputs]
  joints_uvz = ops.cast(joints_uvz, "float32")
  total = ops.zeros((), "float32")
  parts = []
  for stack_outputs in outputs:
    errors = ops.cast(stack_outputs["joints_uvz"], "float32") - joints_uvz
    coordinate = reduce(ops.sum(huber(errors, delta), axis=(1, 2)))
    if "offset_maps" in stack_outputs:
      offset_maps = ops.cast(stack_outputs["offset_maps"], "float32")
      stride = depth_crop.shape[1] // offset_maps.shape[1]
      offset_errors = offset_maps - ground_truth_offset_maps(
          joints_uvz, depth_crop, stride, convention)
      offset = reduce(
          ops.sum(huber(offset_errors, delta), axis=(1, 2, 3, 4)))
    else:
      offset = ops.zeros((), "float32")
    stack_total = coordinate + offset_weight * offset
    parts.append({"coordinate": coordinate, "offset": offset,
                  "total": stack_total})
    total = total + stack_total
  return total, parts
