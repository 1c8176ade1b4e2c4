"""Importing the authors' TF1 checkpoints: parity with their network.

``authors_forward`` is an independent description of the authors' graph
(network/dense_offset_graph.py of fanglinpu/JGR-P2O, read, not copied), in
plain TensorFlow ops: convolutions, batch norms with their moving statistics,
TF1's resize kernels. It asks for each variable by the name TF1 gives it, in
the order the graph creates it; called with a source of random values, it
both writes a TF1-format checkpoint (``tf.raw_ops.SaveV2``) and computes
what the authors' network outputs with it. Where the released checkpoints'
index files are beside the checkout (shared/authors_checkpoints, as in CI),
the names and shapes it asks for must be exactly theirs.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from jgr_p2o_tf import authors_checkpoint
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import evaluation
from jgr_p2o_tf import exporter
from jgr_p2o_tf import geometry
from jgr_p2o_tf import inference
from jgr_p2o_tf import inspection

REPO = pathlib.Path(__file__).resolve().parents[1]
RELEASED = REPO.parent / "shared" / "authors_checkpoints"
RELEASED_INDEX = {"nyu": RELEASED / "NYU" / "3D_Detection.model-58",
                  "icvl": RELEASED / "ICVL" / "3D_Detection.model-8"}

# The hands' bones as the authors' adjacency matrices connect them.
BONES = {
    "nyu": [(0, 1), (1, 13), (2, 3), (3, 13), (4, 5), (5, 13), (6, 7),
            (7, 13), (8, 9), (9, 10), (10, 13), (11, 13), (12, 13)],
    "icvl": [(0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8),
             (8, 9), (0, 10), (10, 11), (11, 12), (0, 13), (13, 14),
             (14, 15)],
}
NUM_JOINTS = {"nyu": 14, "icvl": 16}


def gcn_adjacency(dataset):
  """D^-1/2 (A + I) D^-1/2 of the dataset's bones."""
  n = NUM_JOINTS[dataset]
  a = np.eye(n)
  for i, j in BONES[dataset]:
    a[i, j] = a[j, i] = 1.0
  d = a.sum(axis=0) ** -0.5
  return (d[:, None] * a * d[None, :]).astype(np.float32)


class RandomVariables:
  """Hands out random values for the variables a graph asks for, and keeps
  them (name → array, in the order asked) to be saved as its checkpoint."""

  def __init__(self, seed):
    self.rng = np.random.default_rng(seed)
    self.values = {}

  def __call__(self, name, shape, scale=1.0):
    assert name not in self.values, name
    leaf = name.rsplit("/", 1)[-1]
    fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    if leaf in ("gamma", "moving_variance"):
      value = self.rng.uniform(0.8, 1.2, shape)
    elif leaf in ("beta", "moving_mean"):
      value = self.rng.uniform(-0.1, 0.1, shape)
    elif leaf == "bias":
      # Large, so that the import must really not need it.
      value = self.rng.normal(0.0, 3.0, shape)
    else:
      value = self.rng.normal(0.0, scale * fan_in ** -0.5, shape)
    self.values[name] = value.astype(np.float32)
    return tf.constant(self.values[name])

  def save(self, prefix):
    names = list(self.values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                      shape_and_slices=[""] * len(names),
                      tensors=[self.values[n] for n in names])
    return prefix


def authors_forward(image, variable, adjacency, num_features=128,
                    num_stacks=2):
  """The authors' network in inference mode, in plain TensorFlow.

  Args:
    image: (B, S, S, 1) float32 normalized depth crops.
    variable: ``variable(name, shape, scale)`` → the value of a TF1
      variable; ``scale`` < 1 asks for the small kernels of the u, v, z
      convolutions (offsets of a fraction of the crop, as trained).
    adjacency: (N, N) normalized adjacency of their GCN.
    num_features: their --num_fea.
    num_stacks: 2 in their code.

  Returns:
    list per stack of dicts: "joints_uvz" (B, N, 3) with u = Σ w (Δu + j/23)
    etc., "offset_maps" (B, h, w, N, 3) (their u, v, z maps stacked),
    "voting_maps" (B, h, w, N).
  """
  n = adjacency.shape[0]
  counts = {}

  def tf1_name(kind):
    count = counts.get(kind, 0)
    counts[kind] = count + 1
    return kind if count == 0 else f"{kind}_{count}"

  def conv(x, filters, size, stride=1, bias=False, scale=1.0):
    name = tf1_name("conv2d")
    kernel = variable(f"{name}/kernel", (size, size, x.shape[-1], filters),
                      scale)
    y = tf.nn.conv2d(x, kernel, stride, "SAME")
    return y + variable(f"{name}/bias", (filters,)) if bias else y

  def batch_norm(x):
    name = tf1_name("batch_normalization")
    c = (x.shape[-1],)
    gamma, beta, mean, var = (variable(f"{name}/{v}", c) for v in (
        "gamma", "beta", "moving_mean", "moving_variance"))
    return (x - mean) / tf.sqrt(var + 1e-5) * gamma + beta

  def conv_bn_relu(x, filters, size, stride=1):
    return tf.nn.relu(batch_norm(conv(x, filters, size, stride)))

  def residual(x, filters=None):
    filters = filters or x.shape[-1]
    y = conv_bn_relu(x, filters // 2, 1)
    y = conv_bn_relu(y, filters // 2, 3)
    y = batch_norm(conv(y, filters, 1))
    skip = x if filters == x.shape[-1] else batch_norm(conv(x, filters, 1))
    return tf.nn.relu(y + skip)

  def hourglass(x, order):
    upper = residual(x)
    lower = residual(tf.nn.max_pool2d(x, 3, 2, "SAME"))
    if order > 1:
      lower = hourglass(lower, order - 1)
    lower = residual(lower)
    size = [2 * lower.shape[1], 2 * lower.shape[2]]
    return upper + tf.raw_ops.ResizeNearestNeighbor(
        images=lower, size=size, align_corners=False,
        half_pixel_centers=False)

  variable("edge", (1, n, n))
  x = conv_bn_relu(image, num_features // 4, 7, stride=2)
  x = residual(x, num_features // 2)
  x = tf.nn.max_pool2d(x, 2, 2, "SAME")
  x = residual(x)
  stack_input = residual(x, num_features)
  batch, h, w, _ = stack_input.shape
  maps = []
  for stack in range(num_stacks):
    features = residual(hourglass(stack_input, 3))
    # Pixel-to-joint voting, graph reasoning, joint-to-pixel mapping.
    weights = tf.nn.softmax(tf.reshape(
        conv(features, n, 1, bias=True), (batch, h * w, n)), axis=1)
    local = tf.reshape(conv_bn_relu(features, num_features, 1),
                       (batch, h * w, num_features))
    joints = tf.matmul(weights, local, transpose_a=True)
    dense = variable(f"{tf1_name('dense')}/kernel",
                     (num_features, num_features))
    evolved = tf.nn.relu(tf.matmul(adjacency, tf.matmul(joints, dense)))
    context = tf.reduce_mean(
        tf.transpose(weights, (0, 2, 1))[..., None] * evolved[:, :, None, :],
        axis=1)
    context = conv_bn_relu(tf.reshape(context, (batch, h, w, num_features)),
                           num_features, 1)
    enhanced = conv_bn_relu(tf.concat([features, context], -1),
                            num_features, 1)
    offsets = [conv(enhanced, n, 1, scale=0.05) for _ in "uvz"]
    if stack < num_stacks - 1:
      stack_input = (stack_input +
                     conv_bn_relu(tf.concat(offsets, -1), num_features, 1) +
                     conv_bn_relu(enhanced, num_features, 1))
    maps.append((tf.reshape(weights, (batch, h, w, n)), offsets))
  # The grid: u = j/(w-1), v = i/(h-1); z: TF1's bilinear resize of the crop.
  cols, rows = tf.meshgrid(tf.range(w, dtype=tf.float32),
                           tf.range(h, dtype=tf.float32))
  grid_z = tf.raw_ops.ResizeBilinear(images=image, size=[h, w],
                                     align_corners=False,
                                     half_pixel_centers=False)
  grid = [cols[..., None] / (w - 1), rows[..., None] / (h - 1), grid_z]
  outputs = []
  for weights, offsets in maps:
    joints = [tf.reduce_sum(weights * (o + g), axis=(1, 2))
              for o, g in zip(offsets, grid)]
    outputs.append({"joints_uvz": tf.stack(joints, -1).numpy(),
                    "offset_maps": tf.stack(offsets, -1).numpy(),
                    "voting_maps": weights.numpy()})
  return outputs


def hand_crops(batch, size, seed):
  """Background 1 with a blob of depths in [-0.6, 0.6]."""
  rng = np.random.default_rng(seed)
  crops = np.ones((batch, size, size, 1), np.float32)
  yy, xx = np.mgrid[:size, :size] / size
  for b in range(batch):
    cx, cy = rng.uniform(0.35, 0.65, 2)
    hand = (xx - cx) ** 2 + (yy - cy) ** 2 < 0.08
    crops[b, hand, 0] = rng.uniform(-0.6, 0.6, hand.sum())
  return crops


def write_checkpoint(directory, dataset, num_features=128, seed=0, size=96,
                     batch=2):
  """A random checkpoint of the authors' graph, and its outputs on crops."""
  values = RandomVariables(seed)
  crops = hand_crops(batch, size, seed)
  outputs = authors_forward(tf.constant(crops), values, gcn_adjacency(dataset),
                            num_features)
  prefix = values.save(str(directory / "3D_Detection.model-3"))
  return prefix, values.values, crops, outputs


@pytest.fixture(scope="module")
def imported_nyu(tmp_path_factory):
  """A random NYU-shaped checkpoint, imported; the reference's outputs."""
  root = tmp_path_factory.mktemp("authors_nyu")
  prefix, values, crops, expected = write_checkpoint(root, "nyu")
  report = authors_checkpoint.import_checkpoint(prefix, "nyu",
                                                root / "model")
  import keras  # pylint: disable=g-import-not-at-top
  model = keras.saving.load_model(root / "model" / "last.keras")
  actual = model(crops, training=False)
  return {"report": report, "values": values, "model": model,
          "expected": expected, "actual": actual, "prefix": prefix}


@pytest.fixture(scope="module")
def tiny_icvl(tmp_path_factory):
  """A random 16-joint checkpoint of a 16-feature authors' network."""
  root = tmp_path_factory.mktemp("authors_tiny")
  prefix, values, _, _ = write_checkpoint(root, "icvl", num_features=16,
                                          size=32, batch=1)
  return prefix, values


def _weights(model):
  return {w.path: np.asarray(w) for w in model.weights}


def test_every_variable_is_used_once_and_every_weight_is_set(imported_nyu):
  report, values = imported_nyu["report"], imported_nyu["values"]
  weights = _weights(imported_nyu["model"])
  assert set(report.assigned) | set(report.skipped) == set(values)
  assert not set(report.assigned) & set(report.skipped)
  assert set(report.skipped) == {"edge", "conv2d_42/bias", "conv2d_81/bias"}
  assert set(report.assigned.values()) == set(weights)
  sources = {}
  for name, target in report.assigned.items():
    sources.setdefault(target, []).append(name)
  merged = {t: names for t, names in sources.items() if len(names) > 1}
  # Their u, v, z convolutions are our offset convolution, side by side.
  assert merged == {
      "stack1_p2o/offset_conv/kernel": [f"conv2d_{i}/kernel"
                                        for i in (46, 47, 48)],
      "stack2_p2o/offset_conv/kernel": [f"conv2d_{i}/kernel"
                                        for i in (85, 86, 87)]}
  for target, names in sources.items():
    np.testing.assert_array_equal(
        weights[target], np.concatenate([values[n] for n in names], -1),
        err_msg=target)


def test_parameter_count_is_the_authors_less_what_they_never_use(
    imported_nyu):
  values, model = imported_nyu["values"], imported_nyu["model"]
  theirs = sum(v.size for n, v in values.items() if "moving_" not in n)
  assert theirs == 1_365_440
  ours = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
  assert ours == theirs - 2 * 14 - 14 * 14


@pytest.mark.parametrize("key", ["joints_uvz", "offset_maps", "voting_maps"])
def test_imported_model_computes_the_authors_network(imported_nyu, key):
  expected, actual = imported_nyu["expected"], imported_nyu["actual"]
  assert len(actual) == len(expected) == 2
  for stack in range(2):
    np.testing.assert_allclose(np.asarray(actual[stack][key]),
                               expected[stack][key], atol=1e-5, rtol=0,
                               err_msg=f"stack {stack + 1} {key}")
  # Outputs that tell the graphs apart: joints spread over the crop and
  # peaked voting maps.
  joints = expected[-1]["joints_uvz"]
  assert joints[..., :2].std() > 0.02
  assert expected[-1]["voting_maps"].max() > 10 / (24 * 24)


def test_model_directory_records_its_source(imported_nyu):
  report, model = imported_nyu["report"], imported_nyu["model"]
  config = json.loads(
      (pathlib.Path(report.model_dir) / "config.json").read_text())
  assert config == report.config
  assert config["source_checkpoint"] == os.path.abspath(imported_nyu["prefix"])
  assert (config["dataset"], config["skeleton"]) == ("nyu", "nyu")
  assert config["cube_mm"] == [250.0] * 3
  assert geometry.Camera(**config["camera"]) == dataset_profiles.get_profile("nyu").camera
  assert config["coordinate_convention"] == "authors"
  assert set(config["skipped_variables"]) == set(report.skipped)
  assert model.coordinate_convention == "authors"
  assert model.get_config()["skeleton"] == "nyu"


needs_released = pytest.mark.skipif(
    not RELEASED.is_dir(), reason="the released index files are not here")


@needs_released
@pytest.mark.parametrize("dataset", ["nyu", "icvl"])
def test_reference_asks_for_exactly_the_released_variables(dataset,
                                                           tmp_path):
  values = RandomVariables(0)
  authors_forward(tf.constant(hand_crops(1, 32, 0)), values,
                  gcn_adjacency(dataset))
  reader = tf.train.load_checkpoint(str(RELEASED_INDEX[dataset]))
  shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
  assert {k: v.shape for k, v in values.values.items()} == shapes
  assert set(reader.get_variable_to_dtype_map().values()) == {tf.float32}
  # The index alone passes the layout check; the values need the .data file.
  with pytest.raises(ValueError, match=r"^cannot read conv2d/kernel \(.*"
                     r"data-00000-of-00001.*\); the checkpoint's \.data file "
                     r"must lie beside its \.index$"):
    authors_checkpoint.import_checkpoint(RELEASED_INDEX[dataset], dataset,
                                         tmp_path / "model")
  assert not os.listdir(tmp_path)


def _copy_checkpoint(prefix, directory, rename=None):
  """The checkpoint's variables saved again, one of them renamed."""
  reader = tf.train.load_checkpoint(prefix)
  names = sorted(reader.get_variable_to_shape_map())
  tensors = [reader.get_tensor(n) for n in names]
  if rename:
    names = [rename.get(n, n) for n in names]
  directory.mkdir()
  new_prefix = str(directory / "3D_Detection.model-3")
  tf.raw_ops.SaveV2(prefix=new_prefix, tensor_names=names,
                    shape_and_slices=[""] * len(names), tensors=tensors)
  return new_prefix


def _truncated(prefix, directory):
  new_prefix = _copy_checkpoint(prefix, directory)
  index = pathlib.Path(new_prefix + ".index")
  index.write_bytes(index.read_bytes()[:len(index.read_bytes()) // 2])
  return new_prefix


@pytest.mark.parametrize("case,dataset,message", [
    ("truncated", "icvl", r"^/.*model-3: not a readable TensorFlow "
     r"checkpoint \([^\n]+\)$"),
    ("renamed", "icvl", r"^the checkpoint lacks dense/kernel \(expected "
     r"shape \[16, 16\]\)$"),
    ("as_nyu", "nyu", r"^edge has shape \[1, 16, 16\], expected \[1, 14, "
     r"14\] \(--dataset=nyu has 14 joints, 16 features\)$"),
])
def test_a_checkpoint_that_does_not_fit_stops_with_one_line(
    tiny_icvl, tmp_path, case, dataset, message):
  prefix, _ = tiny_icvl
  if case == "truncated":
    prefix = _truncated(prefix, tmp_path / "source")
  elif case == "renamed":
    prefix = _copy_checkpoint(prefix, tmp_path / "source",
                              rename={"dense/kernel": "dense_9/kernel"})
  with pytest.raises(ValueError, match=message):
    authors_checkpoint.import_checkpoint(prefix, dataset, tmp_path / "model")
  assert not (tmp_path / "model").exists()
  assert not (tmp_path / "model.partial").exists()


def test_cli_error_is_one_line_and_loses_nothing(tiny_icvl, tmp_path):
  prefix, _ = tiny_icvl
  model_dir = tmp_path / "model"
  model_dir.mkdir()
  (model_dir / "notes.txt").write_text("mine")
  result = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.import_checkpoint",
       f"--checkpoint={prefix}", "--dataset=icvl", f"--model_dir={model_dir}"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr.strip().splitlines() == [
      f"error: {model_dir} is not empty; choose another model_dir or "
      f"overwrite it (--overwrite)"]
  assert [p.name for p in model_dir.iterdir()] == ["notes.txt"]


def test_imported_model_directory_serves_evaluate_export_and_the_notebook(
    tiny_icvl, synthetic_records, tmp_path):
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  prefix, _ = tiny_icvl
  model_dir = tmp_path / "model"
  authors_checkpoint.import_checkpoint(prefix, "icvl", model_dir)
  test_dir = os.path.join(synthetic_records, "test")
  # The notebook opens the folder as a training run's.
  model, skeleton = inspection.load_model(model_dir)
  assert skeleton == "icvl" and model.coordinate_convention == "authors"
  batch = next(iter(input_pipeline.make_dataset(test_dir, batch_size=4,
                                                training=False)))
  batch = {k: v.numpy() for k, v in batch.items()}
  raw = np.asarray(model(batch["depth"], training=False)[-1]["joints_uvz"],
                   np.float64)
  # The authors' decoding: crop pixel = 95 u.
  expected_uvd = geometry.normalized_to_uvd(
      raw, batch["affine"].astype(np.float64), batch["centre_xyz"][:, 2],
      batch["cube"], convention="authors")

  # evaluate (model mode) maps the joints back in the model's convention.
  predictions = evaluation.predict_records(model, test_dir, batch_size=64)
  np.testing.assert_allclose(predictions["pred_uvd"][:4], expected_uvd,
                             atol=1e-3)
  frames = inspection.run_on_records(model, test_dir, num_frames=4)
  np.testing.assert_allclose(frames["pred_xyz"], predictions["pred_xyz"][:4],
                             atol=1e-3)
  # export takes the cube and camera from config.json; its signatures answer
  # in the project's convention.
  metadata = exporter.export_from_model_dir(model_dir, tmp_path / "saved",
                                            jit_compile=False)
  assert metadata["coordinate_convention"] == "authors"
  assert metadata["cube_mm"] == [250.0] * 3
  assert (metadata["dataset"], metadata["skeleton"]) == ("icvl", "icvl")
  crop = inference.Predictor(tmp_path / "saved").predict_crop(batch["depth"])
  np.testing.assert_allclose(crop["joints_uvz"],
                             geometry.convert_uvz(raw, 96, "authors"),
                             atol=1e-4)
