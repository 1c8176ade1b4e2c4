"""Hand poses from depth images with an exported model, on three runtimes.

``Predictor`` loads an export of ``python -m jgr_p2o_tf.export`` and runs
its full-frame and crop graphs on NumPy arrays, on one of ``RUNTIMES``:

  * "tensorflow": a SavedModel (``saved_model_contract``), TensorFlow alone;
  * "onnxruntime" and "openvino": an ONNX export (``onnx_contract``), with
    neither TensorFlow nor Keras (``pip install .[onnx]``).

Whatever the runtime, the same arrays come back (``RUNTIMES`` agree to
float32 precision). ``CropModel`` calls a Predictor's crop graph like the
Keras model (the evaluator and the notebook take it); ``read_depth`` reads
one depth image with the dataset readers' functions; ``predict_files`` and
``write_predictions`` are what ``python -m jgr_p2o_tf.infer`` does.

Depth image formats (by extension and dataset):
  * ``.png``: the dataset's depth PNG (its profile's ``read_depth_png``):
    16-bit single-channel depth in mm (ICVL, the synthetic data, most depth
    cameras' tools, and without a dataset), or for "nyu" NYU's 8-bit RGB
    PNG, depth = (G << 8) | B;
  * ``.bin``: MSRA 2015's binary files (header and float32 depth of a box).
"""

import dataclasses
import json
import os

import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import onnx_contract
from jgr_p2o_tf import saved_model_contract
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.datasets import centres
from jgr_p2o_tf.datasets import frame as frame_lib
from jgr_p2o_tf.datasets import msra

PREDICTIONS_FILE = "predictions.json"
RUNTIMES = ("tensorflow", "onnxruntime", "openvino")
# The runtime an export runs on when none is asked for, by its format.
DEFAULT_RUNTIMES = {saved_model_contract.FORMAT: "tensorflow",
                    onnx_contract.FORMAT: "onnxruntime"}


def export_format(path):
  """The format of the export at ``path``, None if there is none.

  ``saved_model_contract.FORMAT`` (saved_model.pb) or ``onnx_contract.FORMAT``
  (its ``CROP_FILE``).
  """
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return saved_model_contract.FORMAT
  if os.path.isfile(os.path.join(path, onnx_contract.CROP_FILE)):
    return onnx_contract.FORMAT
  return None


class _TensorFlowGraphs:
  """A SavedModel's signatures, run by TensorFlow."""

  def __init__(self, model_dir):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._loaded = tf.saved_model.load(model_dir)
    self.metadata = saved_model_contract.read_metadata(self._loaded,
                                                       model_dir)
    self._signatures = self._loaded.signatures

  def _run(self, signature, arguments):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    outputs = self._signatures[signature](
        **{k: tf.constant(v, tf.float32) for k, v in arguments.items()})
    return {k: v.numpy() for k, v in outputs.items()}

  def full_frame(self, arguments):
    return self._run(
        saved_model_contract.SIGNATURE_FULL_FRAME_WITH_CENTRE
        if self.metadata.get("centre_refiner")
        else saved_model_contract.SIGNATURE_FULL_FRAME, arguments)

  def find_hand_and_pose(self, arguments):
    return self._run(saved_model_contract.SIGNATURE_FULL_FRAME, arguments)

  def crop(self, depth_crop):
    return self._run(saved_model_contract.SIGNATURE_CROP,
                     {"depth_crop": depth_crop})


class _OnnxGraphs:
  """The graphs of an ONNX export, each loaded when first run.

  Subclasses load a graph (``_load``: the runtime's compiled graph and the
  file's metadata properties) and run it (``_run``). The SavedModel's
  input checks are here, as ONNX has no assertions.
  """

  def __init__(self, model_dir):
    self._model_dir = model_dir
    self._graphs = {}
    self.metadata = self._graph(onnx_contract.CROP_FILE)[1]

  def _graph(self, name):
    if name not in self._graphs:
      path = os.path.join(self._model_dir, name)
      if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file in the ONNX export")
      graph, properties = self._load(path)
      self._graphs[name] = graph, onnx_contract.parse_metadata(properties,
                                                               path)
    return self._graphs[name]

  def full_frame(self, arguments):
    depth = arguments["depth"]
    if min(depth.shape[1:]) < 1:
      raise ValueError("depth must be (B, H, W) with H, W >= 1")
    if not np.all(arguments["centre_xyz"][:, 2] > 0):
      raise ValueError("centre_xyz z must be > 0 mm (in front of the camera)")
    if not np.all(np.abs(arguments["intrinsics"][:, :2]) > 0):
      raise ValueError("intrinsics fx and fy must be non-zero")
    return self._run(self._graph(onnx_contract.FULL_FRAME_FILE)[0], {
        k: np.ascontiguousarray(v, np.float32) for k, v in arguments.items()})

  def crop(self, depth_crop):
    size = self.metadata["crop_size"]
    if depth_crop.ndim != 4 or depth_crop.shape[1:] != (size, size, 1):
      raise ValueError(f"depth_crop must be (B, {size}, {size}, 1), got "
                       f"shape {depth_crop.shape}")
    return self._run(self._graph(onnx_contract.CROP_FILE)[0], {
        "depth_crop": np.ascontiguousarray(depth_crop, np.float32)})


class _OnnxRuntimeGraphs(_OnnxGraphs):
  """An ONNX export run by onnxruntime on the CPU.

  All graph optimizations (onnxruntime's layout transformation to blocked
  NCHWc convolutions among them) and one intra-op thread per usable core.
  """

  def _load(self, path):
    import onnxruntime  # pylint: disable=g-import-not-at-top
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = (
        onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL)
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    session = onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"])
    return session, session.get_modelmeta().custom_metadata_map

  def _run(self, session, feeds):
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


class _OpenVINOGraphs(_OnnxGraphs):
  """An ONNX export run by OpenVINO on the CPU, in float32.

  Each graph is compiled for each set of input shapes it is run on, when
  first run on it (a fraction of a second): with static shapes OpenVINO
  plans its memory and kernels ahead, 1.2 to 1.6 times as fast as one
  compilation for any shape at batch 1 and 32 (the benchmark's network).
  float32 is asked for: on CPUs with bfloat16 arithmetic (AVX512_BF16, AMX)
  OpenVINO computes in bfloat16 by default, 1e-3 off in normalized UVZ.
  """

  def _load(self, path):
    import openvino  # pylint: disable=g-import-not-at-top
    core = openvino.Core()
    model = core.read_model(path)
    rt_info = model.get_rt_info()
    # The ONNX reader puts the metadata properties under "framework".
    properties = ({key: value.astype(str) for key, value in
                   rt_info["framework"].items()}
                  if "framework" in rt_info.keys() else {})
    return (core, model, {}), properties

  def _run(self, graph, feeds):
    core, model, requests = graph
    shapes = tuple(value.shape for value in feeds.values())
    if shapes not in requests:
      static = model.clone()
      static.reshape({name: list(value.shape) for name, value in feeds.items()})
      requests[shapes] = core.compile_model(static, "CPU", {
          "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"
      }).create_infer_request()
    request = requests[shapes]
    # The call is synchronous: OpenVINO may read the arrays in place.
    results = request.infer(feeds, share_inputs=True)
    return {output.get_any_name(): np.asarray(results[output])
            for output in request.model_outputs}


_GRAPHS = {"tensorflow": _TensorFlowGraphs,
           "onnxruntime": _OnnxRuntimeGraphs,
           "openvino": _OpenVINOGraphs}


class Predictor:
  """An exported model on one of ``RUNTIMES``: no Keras, no model code.

  Args:
    model_dir: a SavedModel or an ONNX export of ``python -m
      jgr_p2o_tf.export``.
    runtime: one of ``RUNTIMES``; None: the export format's default
      (``DEFAULT_RUNTIMES``). A SavedModel runs on "tensorflow", an ONNX
      export on "onnxruntime" and "openvino".

  Attributes:
    model_dir: the export's folder.
    runtime: the runtime's name.
    metadata: the export's metadata dict (``saved_model_contract``,
      ``onnx_contract``).
    skeleton: its Skeleton.
    camera: the default Camera stored at export, or None.

  Raises:
    FileNotFoundError: no export at ``model_dir``.
    ValueError: naming the file: an unknown runtime or one that cannot run
      the export, or an export without this project's metadata or of
      another format version.
  """

  def __init__(self, model_dir, runtime=None):
    model_dir = os.fspath(model_dir)
    export = export_format(model_dir)
    if export is None:
      raise FileNotFoundError(
          f"{model_dir}: neither a SavedModel (saved_model.pb) nor an ONNX "
          f"export ({onnx_contract.CROP_FILE}) of python -m jgr_p2o_tf.export")
    runtime = runtime or DEFAULT_RUNTIMES[export]
    if runtime not in RUNTIMES:
      raise ValueError(f"unknown runtime {runtime!r}; expected one of "
                       f"{', '.join(RUNTIMES)}")
    if export == saved_model_contract.FORMAT and runtime != "tensorflow":
      raise ValueError(f"{model_dir}: a SavedModel runs on tensorflow; for "
                       f"{runtime}, export the model with --format=onnx")
    if export == onnx_contract.FORMAT and runtime == "tensorflow":
      raise ValueError(f"{model_dir}: an ONNX export runs on onnxruntime or "
                       f"openvino; for tensorflow, export the model as a "
                       f"SavedModel")
    self.model_dir = model_dir
    self.runtime = runtime
    self._graphs = _GRAPHS[runtime](model_dir)
    self.metadata = self._graphs.metadata
    self.skeleton = skeletons.get_skeleton(self.metadata["skeleton"])
    camera = self.metadata.get("camera")
    self.camera = None if camera is None else geometry.Camera(**camera)

  @property
  def cube_mm(self):
    return np.asarray(self.metadata["cube_mm"], np.float32)

  @property
  def finds_hand(self):
    """Whether the export bundles a centre refiner (needs no centre)."""
    return bool(self.metadata.get("centre_refiner"))

  def predict(self, depth_mm, centre_xyz, camera):
    """The full-frame graph on one frame or a batch.

    Args:
      depth_mm: (H, W) or (B, H, W) depth in mm (any real dtype; 0 = hole).
      centre_xyz: (3,) or (B, 3) hand centres in mm; None to let the
        export's centre refiner find the hand (``finds_hand``).
      camera: Camera, or (4,) or (B, 4) intrinsics fx, fy, cx, cy.

    Returns:
      dict of arrays ``joints_xyz``, ``joints_uvd``, ``joints_uvz``: (J, 3)
      float32 for one frame, (B, J, 3) for a batch; without a centre also
      ``centre_xyz`` (3,) / (B, 3), the centre found, and ``hand_found``,
      bool () / (B,), the joints being NaN where it is False.
    """
    depth = np.asarray(depth_mm, np.float32)
    single = depth.ndim == 2
    if depth.ndim not in (2, 3):
      raise ValueError(f"depth must be (H, W) or (B, H, W), got shape "
                       f"{depth.shape}")
    batch = 1 if single else depth.shape[0]
    intrinsics = (camera.intrinsics if isinstance(camera, geometry.Camera)
                  else np.asarray(camera, np.float32))
    arguments = {
        "depth": depth.reshape((batch,) + depth.shape[-2:]),
        "intrinsics": np.broadcast_to(intrinsics.astype(np.float32),
                                      (batch, 4))}
    if centre_xyz is None:
      if not self.finds_hand:
        raise ValueError(f"{self.model_dir}: an export without a centre "
                         f"refiner needs a hand centre (export with "
                         f"--centre_refiner_dir to find it in the graph)")
      outputs = self._graphs.find_hand_and_pose(arguments)
    else:
      outputs = self._graphs.full_frame({
          **arguments, "centre_xyz": np.broadcast_to(
              np.asarray(centre_xyz, np.float32), (batch, 3))})
    return {k: v[0] for k, v in outputs.items()} if single else outputs

  def predict_crop(self, depth_crop):
    """The crop graph on (B, S, S, 1) normalized crops → dict of arrays."""
    return self._graphs.crop(np.asarray(depth_crop, np.float32))


class CropModel:
  """A Predictor's crop graph, called like the Keras model.

  ``model(depth_crop, training=False)`` gives a one-element list (the last
  stack) of ``joints_uvz`` and ``voting_maps``, without offset maps; its
  joints are in the project's coordinate convention, whatever the exported
  network's.
  """

  coordinate_convention = "project"

  def __init__(self, predictor):
    self.predictor = predictor

  def __call__(self, depth_crop, training=False):
    del training  # An exported model always runs in inference mode.
    return [self.predictor.predict_crop(np.asarray(depth_crop, np.float32))]


def read_depth(path, camera, dataset=None):
  """(H, W) float32 depth in mm of one image (see the module docstring).

  Args:
    path: a .png or .bin file.
    camera: the Camera that took it; the image must have its size.
    dataset: a dataset name, whose profile reads its PNGs ("nyu": NYU's RGB
      packing); None reads 16-bit PNGs.

  Raises:
    DatasetError: naming the file: missing, unreadable, or not of the
      expected format, bit depth, channels or size.
  """
  path = os.fspath(path)
  extension = os.path.splitext(path)[1].lower()
  if extension == ".bin":
    return msra.read_depth_bin(path, None, camera)
  if extension != ".png":
    raise frame_lib.DatasetError(
        "unknown depth image format, expected .png (16-bit, or NYU's RGB with "
        "--dataset=nyu) or .bin (MSRA)", path=path)
  read_png = (dataset_profiles.get_profile(dataset).read_depth_png if dataset
              else frame_lib.read_uint16_depth_png)
  return read_png(path, None, camera)


def resolve_camera(predictor, dataset=None, intrinsics=None):
  """The Camera of the input images.

  Args:
    predictor: a Predictor, whose stored camera is the default.
    dataset: a dataset name: its camera (``dataset_profiles``).
    intrinsics: optional fx, fy, cx, cy[, width, height] overriding the
      intrinsics; without width and height the image size is the default
      camera's.

  Raises:
    ValueError: no camera known, or intrinsics of the wrong length.
  """
  base = (dataset_profiles.get_profile(dataset).camera if dataset
          else predictor.camera)
  if intrinsics is None:
    if base is None:
      raise ValueError("the exported model stores no camera: pass --dataset "
                       "or --camera=fx,fy,cx,cy,width,height")
    return base
  values = [float(v) for v in intrinsics]
  if len(values) == 6:
    width, height = int(values[4]), int(values[5])
  elif len(values) == 4 and base is not None:
    width, height = base.width, base.height
  elif len(values) == 4:
    raise ValueError("--camera=fx,fy,cx,cy needs width,height too: the "
                     "exported model stores no camera to take the image size "
                     "from")
  else:
    raise ValueError(f"--camera takes fx,fy,cx,cy[,width,height], got "
                     f"{len(values)} values")
  if values[0] == 0 or values[1] == 0 or width <= 0 or height <= 0:
    raise ValueError(f"--camera: fx and fy must be non-zero and the size "
                     f"positive, got {values}")
  return geometry.Camera(*values[:4], width=width, height=height)


def predict_files(predictor, paths, camera, *, dataset=None, centre_xyz=None,
                  on_frame=None):
  """Predicts the pose in each depth image, one at a time.

  Args:
    predictor: a Predictor.
    paths: depth image files.
    camera: their Camera.
    dataset: passed to ``read_depth``.
    centre_xyz: (3,) hand centre in mm for every image; None finds each
      image's hand: in the graph when the export bundles a centre refiner
      (``Predictor.finds_hand``), otherwise ``centres.compute_centre`` with
      the exported cube.
    on_frame: optional ``f(result, depth_mm)`` called after each image, e.g.
      to draw it.

  Returns:
    A list with a dict per image: ``file``; ``hand_found`` (bool);
    ``centre_xyz`` and ``centre_uvd`` (3 floats); ``centre_source``,
    "given", "computed" or "refined" (the export's refiner); ``joints_xyz``
    and ``joints_uvd`` (J lists of 3 floats). Where the refiner found no
    hand: ``hand_found`` False, ``result`` "no hand found", and no centre or
    joints.

  Raises:
    DatasetError: naming the image that cannot be read or has no depth.
  """
  if centre_xyz is not None:
    centre_xyz = np.asarray(centre_xyz, np.float32)
    if not centres.centre_in_frame(centre_xyz, camera):
      raise ValueError(
          f"the centre must be x,y,z in mm, finite, with z > 0 and inside "
          f"the {camera.width}×{camera.height} image, got "
          f"{centre_xyz.tolist()}{_projection(centre_xyz, camera)}")
  results = []
  for path in paths:
    path = os.fspath(path)
    depth = read_depth(path, camera, dataset)
    if not np.all(np.isfinite(depth)):
      raise frame_lib.DatasetError("depth values that are not finite",
                                   path=path)
    centre, source = centre_xyz, "given"
    if centre is None and predictor.finds_hand:
      outputs = predictor.predict(depth, None, camera)
      centre, source = outputs.pop("centre_xyz"), "refined"
      if not outputs.pop("hand_found"):
        result = {"file": path, "hand_found": False,
                  "result": "no hand found"}
        if on_frame is not None:
          on_frame(result, depth)
        results.append(result)
        continue
    else:
      if centre is None:
        centre, source = centres.compute_centre(
            depth, camera, cube_mm=predictor.cube_mm, frame_id=path), "computed"
      outputs = predictor.predict(depth, centre, camera)
    if not all(np.all(np.isfinite(v)) for v in outputs.values()):
      raise ValueError(f"{path}: the model's joints are not finite")
    result = {
        "file": path,
        "hand_found": True,
        "centre_xyz": [float(c) for c in centre],
        "centre_uvd": geometry.xyz_to_uvd(centre, camera).tolist(),
        "centre_source": source,
        "joints_xyz": outputs["joints_xyz"].tolist(),
        "joints_uvd": outputs["joints_uvd"].tolist(),
    }
    if on_frame is not None:
      on_frame(result, depth)
    results.append(result)
  return results


def _projection(centre_xyz, camera):
  """Where a centre in front of the camera projects, for error messages."""
  if not (np.all(np.isfinite(centre_xyz)) and centre_xyz[2] > 0):
    return ""
  u, v, _ = geometry.xyz_to_uvd(np.asarray(centre_xyz, np.float64), camera)
  return f" (it projects to u={u:.1f}, v={v:.1f})"


def plot_file_name(path, taken):
  """A PNG name for an input image's figure, unique among ``taken``."""
  stem = os.path.splitext(os.path.basename(path))[0]
  name, count = f"{stem}.png", 1
  while name in taken:
    count += 1
    name = f"{stem}_{count}.png"
  taken.add(name)
  return name


# Decimals of predictions.json's numbers: 0.01 mm, 0.01 pixel; the network
# is no finer than that.
PREDICTION_DECIMALS = 2


def _rounded(value):
  """Floats in nested lists and dicts rounded to PREDICTION_DECIMALS."""
  if isinstance(value, float):
    return round(value, PREDICTION_DECIMALS)
  if isinstance(value, (list, tuple)):
    return [_rounded(v) for v in value]
  if isinstance(value, dict):
    return {k: _rounded(v) for k, v in value.items()}
  return value


def write_predictions(path, predictor, camera, results):
  """Writes ``predictions.json``: the model, camera and per-image results.

  Every path in it (the model, each image, its figure) is absolute; joints
  and centres are rounded to 0.01 mm and 0.01 pixel.
  """
  folder = os.path.dirname(os.path.abspath(path))
  frames = []
  for result in results:
    frame = {**_rounded(result), "file": os.path.abspath(result["file"])}
    if "plot" in result:
      frame["plot"] = os.path.join(folder, result["plot"])
    frames.append(frame)
  report = {
      "model": os.path.abspath(predictor.model_dir),
      "format": predictor.metadata["format"],
      "runtime": predictor.runtime,
      "skeleton": predictor.skeleton.name,
      "joint_names": list(predictor.skeleton.joint_names),
      "camera": dataclasses.asdict(camera),
      "cube_mm": predictor.metadata["cube_mm"],
      "frames": frames,
  }
  # Strict JSON: a NaN or Infinity would be written as no JSON reader takes.
  text = json.dumps(report, indent=1, allow_nan=False)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text + "\n")
  os.replace(tmp, path)
  return report
