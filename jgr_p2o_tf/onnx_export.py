"""Exports a trained model as ONNX graphs for onnxruntime and OpenVINO.

``export_onnx`` writes a Keras model as the folder that ``onnx_contract``
describes (a full-frame and a crop graph, with the SavedModel's tensor names
and metadata); ``export_onnx_from_model_dir`` does it for a training run, as
``python -m jgr_p2o_tf.export --format=onnx`` does. ``quantize_crop_graph``
makes an int8 copy of a crop graph (onnxruntime's static post-training
quantization), which both runtimes run.

How: batch norms are folded into the convolutions (``batch_norm_folding``)
and the SavedModel's serving functions (``exporter.serving_module``, without
XLA) are converted by tf2onnx, so that the ONNX graphs compute what the
SavedModel's signatures compute, the crop and uncrop included. The crop
signature becomes the crop graph; the full-frame graph is the conversions of
the signature's parts before and after the network (``exporter.frame_crops``,
``exporter.frame_joints``) joined around it, so the network is converted
once. Every op converts but one: the crop's ``ImageProjectiveTransformV3``
(nearest neighbour), which ONNX lacks. tf2onnx leaves a placeholder node for
it and ``_nearest_warp_nodes`` writes it in ONNX ops: each crop pixel's
position in the frame under the transform, rounded half away from zero as
TensorFlow rounds, then a GatherND of that pixel (the fill value outside the
frame). ONNX's GridSample in nearest mode would be one node, but
onnxruntime and OpenVINO round its ties to even: where samples fall half-way
between two pixels (a crop whose scale is a simple fraction) it picked other
pixels than the SavedModel, 16,437 of 36,864 in four such crops; the gather
picks the same ones, for 0.1 ms more per frame.
"""

import os
import re
import tempfile

import numpy as np

from jgr_p2o_tf import batch_norm_folding
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import exporter
from jgr_p2o_tf import onnx_contract

OPSET = 17
# The TensorFlow op that tf2onnx cannot convert, and the domain of the
# placeholder node it leaves for it (replaced before the graph is saved).
_WARP_OP = "ImageProjectiveTransformV3"
_PLACEHOLDER_DOMAIN = "jgr_p2o_tf.placeholder"
# What quantize_crop_graph quantizes: the convolutions, which hold nearly all
# the arithmetic, and what lies between them (residual sums, poolings, ReLUs,
# concatenations), so that activations stay int8 from one convolution to the
# next; the softmax, the joint graph's products and the joints' arithmetic
# stay float.
QUANTIZED_OPS = ("Conv", "Add", "MaxPool", "Relu", "Concat")
# Nodes of the P2O layers (model.py names them "stack{s}_p2o"; tf2onnx names
# nodes after TensorFlow's name scopes, ".../stack2_p2o_1/add") stay float but
# for their convolutions: the pixel-to-offset voting (Eq. 6) sums
# coordinates, which 8 bits would round to millimetres.
FLOAT_NODES = re.compile(r"/stack\d+_p2o(_\d+)?/")


class _Nodes:
  """ONNX nodes and initializers under a name prefix (``onnx.helper``)."""

  def __init__(self, prefix):
    self.prefix = prefix
    self.nodes = []
    self.initializers = []
    self._count = 0

  def _name(self, hint):
    self._count += 1
    return f"{self.prefix}/{hint}_{self._count}"

  def constant(self, value, hint="constant"):
    from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
    name = self._name(hint)
    self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
    return name

  def op(self, op_type, *inputs, outputs=1, output=None, **attributes):
    """Adds a node; returns its output name (a list if ``outputs`` > 1)."""
    from onnx import helper  # pylint: disable=g-import-not-at-top
    names = ([output] if output else
             [self._name(op_type) for _ in range(outputs)])
    self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                       name=self._name(op_type + "_node"),
                                       **attributes))
    return names if outputs > 1 else names[0]


def _nearest_warp_nodes(prefix, images, transforms, size, fill_value, output):
  """ONNX nodes computing TensorFlow's ``ImageProjectiveTransformV3``.

  Nearest-neighbour interpolation, constant fill. Crop pixel (x, y) (column,
  row) takes the frame pixel nearest to ``((a0 x + a1 y + a2) / k, (a3 x +
  a4 y + a5) / k)`` with ``k = a6 x + a7 y + 1``, rounded as ``std::round``
  (TensorFlow's kernel), in the same float32 order of operations; outside
  the frame it is ``fill_value``.

  Args:
    prefix: a name prefix for the new nodes and initializers.
    images: name of the (B, H, W, C) input.
    transforms: name of the (B, 8) transforms (a0..a7).
    size: (h, w) of the output.
    fill_value: name of the scalar fill value.
    output: name of the (B, h, w, C) output.

  Returns:
    (nodes, initializers).
  """
  from onnx import TensorProto  # pylint: disable=g-import-not-at-top
  g = _Nodes(prefix)
  height, width = size
  rows, columns = np.mgrid[:height, :width].astype(np.float32)
  x, y = g.constant(columns[None], "x"), g.constant(rows[None], "y")
  # (B, 1, 1) each.
  a = [g.op("Unsqueeze", t, g.constant(np.int64([2])))
       for t in g.op("Split", transforms, outputs=8, axis=1)]

  def row(i, j, last):
    return g.op("Add", g.op("Add", g.op("Mul", a[i], x), g.op("Mul", a[j], y)),
                last)

  k = row(6, 7, g.constant(np.float32(1.0)))
  shape = g.op("Shape", images)

  def dimension(index):
    return g.op("Slice", shape, g.constant(np.int64([index])),
                g.constant(np.int64([index + 1])))

  zero = g.constant(np.float32(0.0))
  half = g.constant(np.float32(0.5))
  indices, inside = [], None
  for source, axis in ((g.op("Div", row(3, 4, a[5]), k), 1),
                       (g.op("Div", row(0, 1, a[2]), k), 2)):
    rounded = g.op("Mul", g.op("Sign", source),
                   g.op("Floor", g.op("Add", g.op("Abs", source), half)))
    extent = g.op("Cast", dimension(axis), to=TensorProto.FLOAT)
    within = g.op("And", g.op("GreaterOrEqual", rounded, zero),
                  g.op("Less", rounded, extent))
    inside = within if inside is None else g.op("And", inside, within)
    indices.append(rounded)
  inside_indices = [g.op("Cast", g.op("Where", inside, i, zero),
                         to=TensorProto.INT64) for i in indices]
  flat = g.op("Add", g.op("Mul", inside_indices[0], dimension(2)),
              inside_indices[1])
  flat = g.op("Reshape", flat, g.constant(np.int64([0, height * width, 1])))
  pixels = g.op("Reshape", images,
                g.op("Concat", dimension(0), g.constant(np.int64([-1])),
                     dimension(3), axis=0))
  gathered = g.op("Reshape", g.op("GatherND", pixels, flat, batch_dims=1),
                  g.constant(np.int64([0, height, width, -1])))
  g.op("Where", g.op("Unsqueeze", inside, g.constant(np.int64([3]))),
       gathered, fill_value, output=output)
  return g.nodes, g.initializers


def _replace_warp_placeholders(model):
  """Writes each placeholder of ``_WARP_OP`` in ONNX ops, in place."""
  from onnx import helper  # pylint: disable=g-import-not-at-top
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
  graph = model.graph
  initializers = {i.name: i for i in graph.initializer}
  nodes = []
  for node in graph.node:
    if node.domain != _PLACEHOLDER_DOMAIN:
      nodes.append(node)
      continue
    attributes = {a.name: helper.get_attribute_value(a)
                  for a in node.attribute}
    if (attributes.get("interpolation") != b"NEAREST" or
        attributes.get("fill_mode") != b"CONSTANT" or
        node.input[2] not in initializers):
      raise ValueError(f"{node.name}: only a nearest-neighbour, constant-fill "
                       f"{_WARP_OP} of a fixed output size converts to ONNX")
    images, transforms, output_shape, fill_value = node.input
    size = tuple(int(s) for s in
                 numpy_helper.to_array(initializers[output_shape]))
    new_nodes, new_initializers = _nearest_warp_nodes(
        node.name, images, transforms, size, fill_value, node.output[0])
    nodes += new_nodes
    graph.initializer.extend(new_initializers)
  del graph.node[:]
  graph.node.extend(nodes)
  used = {name for node in graph.node for name in node.input}
  unused = [i for i in graph.initializer if i.name not in used]
  for initializer in unused:
    graph.initializer.remove(initializer)
  domains = [o for o in model.opset_import if o.domain == _PLACEHOLDER_DOMAIN]
  for opset in domains:
    model.opset_import.remove(opset)


def _name_batch_dimensions(model, names):
  """Names the free dimensions of the graph's inputs and outputs.

  ``names`` maps a tensor to the names of its free dimensions, in order
  ("batch", "height", "width"); tf2onnx gives them numbered names.
  """
  for value in list(model.graph.input) + list(model.graph.output):
    free = [d for d in value.type.tensor_type.shape.dim
            if not d.HasField("dim_value")]
    for dim, name in zip(free, names.get(value.name, ("batch",))):
      dim.dim_param = name


def _convert(function, opset):
  """A ``tf.function`` with an input signature → ONNX ModelProto."""
  import tf2onnx  # pylint: disable=g-import-not-at-top
  # tf2onnx deep-copies the graph before each of its optimizers, to fall back
  # on the copy if one fails; none fails here and the copies took 40% of the
  # export. Its variable turns them off whatever its value.
  name = tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS
  previous = os.environ.get(name)
  os.environ[name] = "FALSE"
  try:
    model, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=opset,
        custom_ops={_WARP_OP: _PLACEHOLDER_DOMAIN})
  finally:
    if previous is None:
      del os.environ[name]
    else:
      os.environ[name] = previous
  _replace_warp_placeholders(model)
  return model


def _joined(pre, network, post, outputs):
  """One graph: ``pre``'s inputs → ``pre`` → ``network`` → ``post``.

  Each part's names get its prefix; Identity nodes (which the runtimes
  remove) link tensors across parts by name: the graph's inputs to ``pre``'s
  and ``post``'s inputs of the same name, ``pre``'s ``depth_crop`` to the
  network's, the network's ``joints_uvz`` and ``pre``'s ``affine`` to
  ``post``, and the graph's ``outputs`` (names) to ``post``'s outputs of
  those names, or else to the network's.
  """
  from onnx import compose  # pylint: disable=g-import-not-at-top
  from onnx import helper  # pylint: disable=g-import-not-at-top
  parts = {"pre": pre, "network": network, "post": post}
  sources = {"depth_crop": "pre/depth_crop",
             "joints_uvz": "network/joints_uvz", "affine": "pre/affine"}
  nodes, initializers, value_info = [], [], []

  def link(source, target):
    nodes.append(helper.make_node("Identity", [source], [target],
                                  name=f"{target}/link"))

  for name, model in parts.items():
    prefixed = compose.add_prefix(model, name + "/")
    for value in model.graph.input:
      link(sources.get(value.name, value.name), f"{name}/{value.name}")
    nodes.extend(prefixed.graph.node)
    initializers.extend(prefixed.graph.initializer)
    value_info.extend(prefixed.graph.value_info)
  graph_outputs = []
  for name in outputs:
    part = "post" if name in [o.name for o in post.graph.output] else "network"
    value, = [o for o in parts[part].graph.output if o.name == name]
    link(f"{part}/{name}", name)
    graph_outputs.append(value)
  graph = helper.make_graph(nodes, "full_frame", list(pre.graph.input),
                            graph_outputs, initializers, value_info=value_info)
  return helper.make_model(graph, opset_imports=network.opset_import,
                           producer_name=network.producer_name,
                           producer_version=network.producer_version)


def _graphs(keras_model, metadata, metadata_path, convention, opset):
  """The export's ONNX graphs: {file name: ModelProto}.

  The network is converted once, as the crop graph (the SavedModel's
  ``crop``); the full-frame graph joins the conversions of the SavedModel's
  ``exporter.frame_crops`` and ``exporter.frame_joints`` around it.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cube, crop_size = metadata["cube_mm"], metadata["crop_size"]
  module = exporter.serving_module(keras_model, cube, crop_size, metadata_path,
                                   False, convention)
  network = _convert(module.crop, opset)
  _name_batch_dimensions(network, {})

  @tf.function(input_signature=exporter.full_frame_signature())
  def pre(depth, centre_xyz, intrinsics):
    depth_crop, affine = exporter.frame_crops(depth, centre_xyz, intrinsics,
                                              cube, crop_size)
    return {"depth_crop": depth_crop, "affine": affine}

  @tf.function(input_signature=[
      tf.TensorSpec((None, metadata["num_joints"], 3), tf.float32,
                    name="joints_uvz"),
      tf.TensorSpec((None, 2, 3), tf.float32, name="affine"),
      *exporter.full_frame_signature()[1:]])
  def post(joints_uvz, affine, centre_xyz, intrinsics):
    outputs = exporter.frame_joints(joints_uvz, affine, centre_xyz,
                                    intrinsics, cube, crop_size)
    # The network's, passed through: an output of the same name as an input
    # makes a cycle in tf2onnx's graph, and _joined takes it from the network.
    del outputs["joints_uvz"]
    return outputs

  full_frame = _joined(
      _convert(pre, opset), network, _convert(post, opset),
      list(metadata["graphs"][onnx_contract.FULL_FRAME_FILE]["outputs"]))
  _name_batch_dimensions(full_frame, {"depth": ("batch", "height", "width")})
  return {onnx_contract.CROP_FILE: network,
          onnx_contract.FULL_FRAME_FILE: full_frame}


def export_onnx(keras_model, export_dir, *, skeleton, cube_mm, camera=None,
                dataset=None, fold_batch_norm_layers=True, overwrite=False,
                source=None, opset=OPSET):
  """Writes ``keras_model`` as an ONNX export (see ``onnx_contract``).

  The folder is written under ``{export_dir}.partial`` and swapped in when
  complete (``exporter.move_into_place``), so a killed export leaves the old
  export or the new one whole.

  Args:
    keras_model: a float32 model of ``model.build_model``.
    export_dir: the folder to write.
    skeleton, cube_mm, camera, dataset, source: as for
      ``exporter.export_saved_model``; they go into the metadata, and
      ``cube_mm`` into the full-frame graph's crop.
    fold_batch_norm_layers: fold BN into the convolutions first.
    overwrite: replace an ONNX export already at ``export_dir``.
    opset: the ONNX opset (16 at least: GatherND with batch dimensions).

  Returns:
    The metadata dict (also in each graph and ``{export_dir}/metadata.json``).

  Raises:
    ValueError: a model of another dtype policy, a skeleton that does not
      fit it, bad cube edges, or an export_dir that must not be overwritten.
  """
  import onnx  # pylint: disable=g-import-not-at-top
  import tf2onnx  # pylint: disable=g-import-not-at-top
  policy = keras_model.dtype_policy.name
  if policy != "float32":
    raise ValueError(f"the ONNX export is float32 (int8: quantize_crop_graph); "
                     f"the model computes in {policy}")
  export_dir = exporter.prepare_export_dir(
      export_dir, onnx_contract.CROP_FILE, "ONNX export", overwrite)
  if camera is None and dataset in dataset_profiles.PROFILES:
    camera = dataset_profiles.PROFILES[dataset].camera
  convention = keras_model.coordinate_convention
  num_folded = 0
  if fold_batch_norm_layers:
    keras_model, num_folded = batch_norm_folding.fold_batch_norm(keras_model)
  saved_model_metadata = exporter.build_metadata(
      keras_model, skeleton=skeleton, cube_mm=cube_mm, camera=camera,
      dataset=dataset, dtype_policy=policy, jit_compile=False,
      batch_norm_folded=num_folded, source=source,
      coordinate_convention=convention)
  metadata = onnx_contract.metadata(
      saved_model_metadata, opset=opset,
      converter=f"tf2onnx {tf2onnx.__version__}")
  partial, metadata_path = exporter.start_partial_export(
      export_dir, onnx_contract.METADATA_FILE, metadata)
  graphs = _graphs(keras_model, metadata, metadata_path, convention, opset)
  properties = onnx_contract.metadata_properties(metadata)
  for name, model in graphs.items():
    onnx.helper.set_model_props(model, properties)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(partial, name))
  exporter.move_into_place(partial, export_dir)
  return metadata


def export_onnx_from_model_dir(model_dir, export_dir, *, model=None,
                               cube_mm=None, fold_batch_norm_layers=True,
                               overwrite=False):
  """Exports a training run's model as ONNX (the CLI's job).

  See ``exporter.load_run`` for where the skeleton, cube edges and camera
  come from.

  Returns:
    The metadata dict.
  """
  keras_model, arguments = exporter.load_run(model_dir, model, cube_mm)
  return export_onnx(keras_model, export_dir,
                     fold_batch_norm_layers=fold_batch_norm_layers,
                     overwrite=overwrite, **arguments)


def quantize_crop_graph(crop_path, output_path, calibration_crops,
                        op_types=QUANTIZED_OPS):
  """An int8 copy of a crop graph, calibrated on the given crops.

  onnxruntime's ``quantize_static`` in QDQ form (QuantizeLinear /
  DequantizeLinear pairs, which onnxruntime fuses into int8 kernels and
  OpenVINO reads as its own int8 quantization): per-channel int8 weights,
  uint8 activations with MinMax ranges over ``calibration_crops`` (a few
  hundred: 64 left a demo model 1.2 mm worse, 256 0.07 mm), for the
  ``op_types`` only and not for ``FLOAT_NODES`` but convolutions. The metadata
  properties stay, with ``quantization`` added.

  Args:
    crop_path: a ``CROP_FILE`` of ``export_onnx``.
    output_path: the .onnx file to write.
    calibration_crops: (N, S, S, 1) float32 normalized crops, e.g. of
      synthetic frames (``data_preparation.prepare_synthetic_split``).
    op_types: the ONNX op types to quantize.

  Returns:
    output_path.
  """
  import json  # pylint: disable=g-import-not-at-top
  import onnx  # pylint: disable=g-import-not-at-top
  from onnxruntime import quantization  # pylint: disable=g-import-not-at-top
  crops = np.asarray(calibration_crops, np.float32)

  class Crops(quantization.CalibrationDataReader):
    """One crop at a time, as the graph's input."""

    def __init__(self):
      self._crops = iter(crops)

    def get_next(self):
      crop = next(self._crops, None)
      return None if crop is None else {"depth_crop": crop[None]}

  with tempfile.TemporaryDirectory() as work_dir:
    prepared = os.path.join(work_dir, "prepared.onnx")
    # Folds constants and infers shapes, as quantize_static recommends.
    quantization.quant_pre_process(crop_path, prepared,
                                   skip_symbolic_shape=True)
    float_nodes = [node.name for node in onnx.load(prepared).graph.node
                   if node.op_type != "Conv" and FLOAT_NODES.search(node.name)]
    quantization.quantize_static(
        prepared, output_path, Crops(),
        quant_format=quantization.QuantFormat.QDQ,
        op_types_to_quantize=list(op_types), nodes_to_exclude=float_nodes,
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
        calibrate_method=quantization.CalibrationMethod.MinMax)
  model = onnx.load(output_path)
  properties = {p.key: p.value for p in model.metadata_props}
  properties[onnx_contract.PROPERTY_PREFIX + "quantization"] = json.dumps({
      "method": "onnxruntime quantize_static, QDQ, per-channel int8 weights, "
                "uint8 activations, MinMax calibration",
      "op_types": list(op_types), "float_nodes": FLOAT_NODES.pattern,
      "calibration_crops": len(crops)})
  onnx.helper.set_model_props(model, properties)
  onnx.save(model, output_path)
  return output_path
