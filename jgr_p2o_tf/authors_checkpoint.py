"""The authors' released TF1 checkpoints, imported into a model directory.

Fang et al. released their trained networks with their TensorFlow 1 code
(github.com/fanglinpu/JGR-P2O, MIT licence):
``checkpoint/NYU/dense_offset_graph_A/3D_Detection.model-58`` (NYU, 8.29 mm
in the paper's Table 5) and ``checkpoint/ICVL/dense_offset_graph_A/
3D_Detection.model-8`` (ICVL, 6.02 mm). ``import_checkpoint`` reads one with
TensorFlow 2 alone (``tf.train.load_checkpoint``), maps its variables onto
``build_model(coordinate_convention="authors")`` and writes a model
directory that ``evaluate``, ``export``, ``infer`` (after export) and the
notebook take as a training run's.

The mapping (``authors_layout``): their variables are named by TF1 in the
order their graph creates its layers (``conv2d_N/kernel``,
``batch_normalization_N/{gamma,beta,moving_mean,moving_variance}``,
``dense_N/kernel``), which is fixed by their network: the stem, then per
stack the hourglass (upper, down, inner, up residual modules per level), the
feature residual, the JGR module (voting convolution φ with a bias, φ', W^e,
ρ, τ), the three offset convolutions (u, v, z) and, between stacks, the links
(offset maps first). Every variable of the checkpoint is assigned to one
weight of ours or deliberately skipped:
  * their voting convolutions' biases: a constant per voting map, which the
    spatial softmax cancels (ours has none);
  * ``edge``: a 1 × N × N variable their graph never reads.
Their three offset kernels (u, v, z) of a stack become our one offset
kernel, their channels side by side. Anything that does not fit (a missing
or extra variable, a wrong shape, another joint count) stops the import with
one line naming the variable and the shape expected; nothing is written then.

The model directory holds ``last.keras`` (their released checkpoints are
their final epochs, not chosen on any split) and ``config.json``: the source
checkpoint, the dataset, its skeleton and camera, the cube of the authors'
test crops (the profile's ``authors_test_cube_mm``) and the model's
arguments; ``export``
takes the cube and camera from it as it takes a training run's from its
records' manifest.
"""

import dataclasses
import json
import os
import shutil

import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import run_dir
from jgr_p2o_tf import skeletons

# The datasets the authors trained on: those with a test cube of theirs.
AUTHORS_DATASETS = tuple(p.name for p in dataset_profiles.PROFILES.values()
                         if p.authors_test_cube_mm is not None)
# Their network: two stacks (Model.num_stack), hourglasses of order 3.
AUTHORS_NUM_STACKS = 2
HOURGLASS_ORDER = 3

_BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclasses.dataclass(frozen=True)
class SourceVariable:
  """One variable of the authors' checkpoint and where it goes.

  Attributes:
    name: its name in the checkpoint.
    shape: the shape it must have.
    target: the path of our weight (``Variable.path``) it is assigned to, or
      None for a variable that is skipped.
    reason: why it is skipped (None when it is assigned).
  """
  name: str
  shape: tuple
  target: str = None
  reason: str = None


class _Layout:
  """Hands out TF1's layer names in creation order and records the pairs."""

  def __init__(self):
    self.variables = []
    self._counts = {}

  def _next(self, kind):
    count = self._counts.get(kind, 0)
    self._counts[kind] = count + 1
    return kind if count == 0 else f"{kind}_{count}"

  def add(self, name, shape, target=None, reason=None):
    self.variables.append(SourceVariable(name, tuple(shape), target, reason))

  def conv(self, kernel_size, channels_in, channels_out, target):
    name = self._next("conv2d")
    self.add(f"{name}/kernel",
             (kernel_size, kernel_size, channels_in, channels_out),
             f"{target}/kernel")
    return name

  def batch_norm(self, channels, target):
    name = self._next("batch_normalization")
    for variable in _BN_VARIABLES:
      self.add(f"{name}/{variable}", (channels,), f"{target}/{variable}")

  def dense(self, units_in, units_out, target):
    self.add(f"{self._next('dense')}/kernel", (units_in, units_out),
             f"{target}/kernel")

  def conv_bn(self, kernel_size, channels_in, channels_out, prefix):
    """Their conv_bn(_relu): ours is ``{prefix}_conv`` + ``{prefix}_bn``."""
    self.conv(kernel_size, channels_in, channels_out, f"{prefix}_conv")
    self.batch_norm(channels_out, f"{prefix}_bn")

  def residual(self, channels_in, channels_out, prefix):
    half = channels_out // 2
    self.conv_bn(1, channels_in, half, f"{prefix}_reduce")
    self.conv_bn(3, half, half, f"{prefix}_spatial")
    self.conv_bn(1, half, channels_out, f"{prefix}_expand")
    if channels_in != channels_out:
      self.conv_bn(1, channels_in, channels_out, f"{prefix}_skip")

  def hourglass(self, channels, order, prefix):
    level = f"{prefix}_level{order}"
    self.residual(channels, channels, f"{level}_upper")
    self.residual(channels, channels, f"{level}_down")
    if order > 1:
      self.hourglass(channels, order - 1, prefix)
    self.residual(channels, channels, f"{level}_up")


def authors_layout(num_joints, num_features=128,
                   num_stacks=AUTHORS_NUM_STACKS):
  """The variables of the authors' checkpoint, in their creation order.

  Args:
    num_joints: N.
    num_features: their ``--num_fea`` (128).
    num_stacks: stacked hourglasses (2 in their code).

  Returns:
    list of SourceVariable, with the targets in
    ``build_model(num_joints, num_features=..., num_stacks=...)``.
  """
  layout = _Layout()
  # Created in the constructor, before the graph; nothing reads it.
  layout.add("edge", (1, num_joints, num_joints),
             reason="their network never reads it (it served a graph "
             "variant their code leaves commented out)")
  features = num_features
  layout.conv_bn(7, 1, features // 4, "stem")
  layout.residual(features // 4, features // 2, "stem_residual1")
  layout.residual(features // 2, features // 2, "stem_residual2")
  layout.residual(features // 2, features, "stem_residual3")
  for stack in range(1, num_stacks + 1):
    prefix = f"stack{stack}"
    layout.hourglass(features, HOURGLASS_ORDER, f"{prefix}_hourglass")
    layout.residual(features, features, f"{prefix}_features")
    jgr = f"{prefix}_jgr"
    voting = layout.conv(1, features, num_joints, f"{jgr}/voting_conv")
    layout.add(f"{voting}/bias", (num_joints,),
               reason="cancels in the spatial softmax of the voting maps")
    layout.conv(1, features, features, f"{jgr}/pixel_transform")
    layout.batch_norm(features, f"{jgr}/pixel_transform_bn")
    layout.dense(features, features, f"{jgr}/graph_transform")
    layout.conv(1, features, features, f"{jgr}/context_conv")
    layout.batch_norm(features, f"{jgr}/context_bn")
    layout.conv(1, 2 * features, features, f"{jgr}/fusion_conv")
    layout.batch_norm(features, f"{jgr}/fusion_bn")
    for _ in "uvz":
      layout.conv(1, features, num_joints, f"{prefix}_p2o/offset_conv")
    if stack < num_stacks:
      layout.conv_bn(1, 3 * num_joints, features, f"{prefix}_prediction_remap")
      layout.conv_bn(1, features, features, f"{prefix}_feature_remap")
  return layout.variables


def _dataset_skeleton(dataset):
  if dataset not in AUTHORS_DATASETS:
    raise ValueError(f"--dataset={dataset!r}: the authors' code trains on "
                     f"{', '.join(AUTHORS_DATASETS)}")
  return skeletons.get_skeleton(dataset)


def _open_checkpoint(checkpoint):
  """(prefix, CheckpointReader) of a checkpoint prefix or its folder."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  checkpoint = os.fspath(checkpoint)
  prefix = checkpoint
  if os.path.isdir(checkpoint):
    prefix = tf.train.latest_checkpoint(checkpoint)
    if prefix is None:
      raise FileNotFoundError(f"{checkpoint}: a folder without a 'checkpoint' "
                              f"file naming its latest checkpoint; pass the "
                              f"prefix, e.g. {checkpoint}/3D_Detection.model-58")
  if not os.path.isfile(prefix + ".index"):
    raise FileNotFoundError(f"{prefix}.index: no such file (pass the "
                            f"checkpoint's prefix, without .index)")
  try:
    return prefix, tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as e:
    raise ValueError(f"{prefix}: not a readable TensorFlow checkpoint "
                     f"({_first_line(e)})") from None


def _first_line(error):
  message = getattr(error, "message", None) or str(error)
  return message.strip().splitlines()[0] if message.strip() else type(
      error).__name__


def _shape_text(shape):
  return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def check_layout(shapes, dataset):
  """The expected layout of a checkpoint's variables, or a one-line error.

  Args:
    shapes: {variable name: shape} of the checkpoint.
    dataset: "nyu", "icvl" or "msra": the joint count.

  Returns:
    (list of SourceVariable, num_features).

  Raises:
    ValueError: naming the first variable that is missing, extra or of
      another shape, and the shape expected.
  """
  num_joints = _dataset_skeleton(dataset).num_joints
  stem = shapes.get("conv2d/kernel")
  if stem is None or len(stem) != 4 or not stem[3] > 0:
    raise ValueError("the checkpoint has no conv2d/kernel of shape [7, 7, 1, "
                     "C]: not a checkpoint of the authors' network "
                     "(network/dense_offset_graph.py)")
  layout = authors_layout(num_joints, num_features=4 * int(stem[3]))
  joints_hint = f"--dataset={dataset} has {num_joints} joints"
  for variable in layout:
    actual = shapes.get(variable.name)
    expected = _shape_text(variable.shape)
    if actual is None:
      raise ValueError(f"the checkpoint lacks {variable.name} (expected shape "
                       f"{expected})")
    if tuple(int(d) for d in actual) != variable.shape:
      raise ValueError(f"{variable.name} has shape {_shape_text(actual)}, "
                       f"expected {expected} ({joints_hint}, "
                       f"{4 * int(stem[3])} features)")
  expected_names = {v.name for v in layout}
  extra = sorted(name for name in shapes if name not in expected_names)
  if extra:
    raise ValueError(f"the checkpoint has {len(extra)} variable(s) the "
                     f"authors' network does not create, first {extra[0]} "
                     f"{_shape_text(shapes[extra[0]])}")
  return layout, 4 * int(stem[3])


@dataclasses.dataclass
class ImportReport:
  """What ``import_checkpoint`` did.

  Attributes:
    checkpoint: the absolute checkpoint prefix read.
    model_dir: the model directory written.
    dataset: the dataset name.
    assigned: {source variable: our weight path}.
    skipped: {source variable: why it is not used}.
    config: the config.json written.
  """
  checkpoint: str
  model_dir: str
  dataset: str
  assigned: dict
  skipped: dict
  config: dict


def read_weights(reader, layout):
  """Our weights' values from the checkpoint, and the source accounting.

  Args:
    reader: a ``tf.train.load_checkpoint`` reader.
    layout: the checkpoint's SourceVariables (``check_layout``).

  Returns:
    (weights, assigned, skipped): {our weight path: float32 array};
    {source variable: our weight path}; {source variable: why it is not
    used}.

  Raises:
    ValueError: a value cannot be read (e.g. the .data file is missing).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  parts, assigned, skipped = {}, {}, {}
  for variable in layout:
    if variable.target is None:
      skipped[variable.name] = variable.reason
      continue
    try:
      value = np.asarray(reader.get_tensor(variable.name), np.float32)
    except (tf.errors.OpError, ValueError) as e:
      raise ValueError(f"cannot read {variable.name} ({_first_line(e)}); the "
                       f"checkpoint's .data file must lie beside its "
                       f".index") from None
    parts.setdefault(variable.target, []).append(value)
    assigned[variable.name] = variable.target
  # The offset kernels of u, v and z, side by side: channel c·N + k.
  weights = {path: np.concatenate(values, axis=-1)
             for path, values in parts.items()}
  return weights, assigned, skipped


def set_weights(model, weights):
  """Assigns {weight path: value} to ``model``: every weight, exactly."""
  targets = {w.path: w for w in model.weights}
  unknown = sorted(set(weights) - set(targets))
  missing = sorted(set(targets) - set(weights))
  if unknown or missing:
    raise ValueError(f"the checkpoint does not fit the model: "
                     f"{'no weight ' + unknown[0] if unknown else ''}"
                     f"{'nothing sets ' + missing[0] if missing else ''}")
  for path, value in weights.items():
    if tuple(value.shape) != tuple(targets[path].shape):
      raise ValueError(f"{path}: the checkpoint gives shape "
                       f"{_shape_text(value.shape)}, the model has "
                       f"{_shape_text(targets[path].shape)}")
    targets[path].assign(value)


def import_checkpoint(checkpoint, dataset, model_dir, *, overwrite=False):
  """Imports one of the authors' checkpoints as a model directory.

  Args:
    checkpoint: the checkpoint's prefix (``.../3D_Detection.model-58``, the
      .index and .data-00000-of-00001 files beside each other) or the folder
      whose ``checkpoint`` file names it.
    dataset: "nyu", "icvl" or "msra": the joint layout the checkpoint was
      trained on.
    model_dir: the folder to write (``last.keras``, ``config.json``).
    overwrite: replace a model directory written before.

  Returns:
    An ImportReport.

  Raises:
    ValueError, FileNotFoundError: one line naming what does not fit;
      nothing is written then.
  """
  skeleton = _dataset_skeleton(dataset)
  model_dir = run_dir.check_output_dir(model_dir, "model_dir",
                                       run_dir.CONFIG_FILE,
                                       run_dir.CONFIG_FILE, overwrite)
  prefix, reader = _open_checkpoint(checkpoint)
  layout, num_features = check_layout(reader.get_variable_to_shape_map(),
                                      dataset)
  weights, assigned, skipped = read_weights(reader, layout)
  from jgr_p2o_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  model = model_lib.build_model(
      skeleton.num_joints, num_stacks=AUTHORS_NUM_STACKS,
      num_features=num_features, skeleton=skeleton.name,
      coordinate_convention="authors")
  set_weights(model, weights)
  prefix = os.path.abspath(prefix)
  config = {
      "source_checkpoint": prefix,
      "dataset": dataset,
      "skeleton": skeleton.name,
      "cube_mm": [dataset_profiles.get_profile(dataset).authors_test_cube_mm]
                 * 3,
      "camera": dataclasses.asdict(dataset_profiles.get_profile(dataset).camera),
      **{k: v for k, v in model.get_config().items()
         if k not in ("name", "trainable", "dtype", "skeleton")},
      "skipped_variables": skipped,
  }
  partial = model_dir + ".partial"
  shutil.rmtree(partial, ignore_errors=True)
  os.makedirs(partial)
  try:
    model.save(os.path.join(partial, run_dir.LAST_MODEL))
    with open(os.path.join(partial, run_dir.CONFIG_FILE), "w",
              encoding="utf-8") as f:
      json.dump(config, f, indent=2)
      f.write("\n")
  except BaseException:
    shutil.rmtree(partial, ignore_errors=True)
    raise
  if os.path.exists(model_dir):
    shutil.rmtree(model_dir)
  os.replace(partial, model_dir)
  return ImportReport(checkpoint=prefix, model_dir=model_dir, dataset=dataset,
                      assigned=assigned, skipped=skipped, config=config)
