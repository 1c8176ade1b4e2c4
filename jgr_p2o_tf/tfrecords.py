"""The TFRecord example schema: one ``tf.train.Example`` per hand crop.

``data_prep`` writes examples with ``serialize_example`` and
``input_pipeline`` reads them with ``parse_example``; nothing else knows the
feature names, so the schema lives here and only here (ARCHITECTURE.md,
"TFRecord example").

Features (S = crop size, J = joint count; shapes after parsing):
  * ``depth``: S·S little-endian float32 bytes → (S, S, 1) normalized depth.
  * ``joints_uvz``: J·3 floats → (J, 3) normalized UVZ.
  * ``joints_xyz``: J·3 floats → (J, 3) full-frame xyz in mm.
  * ``joints_uvd``: J·3 floats → (J, 3) full-frame uvd.
  * ``centre_xyz``: 3 floats, the hand centre in mm.
  * ``cube``: 3 floats, the cube edges in mm.
  * ``affine``: 6 floats → (2, 3), row-major M (full frame → crop pixels).
  * ``camera``: 4 floats, fx fy cx cy (fy keeps its sign, see geometry).
  * ``frame_id``: bytes → string, the reader's frame id.

Records prepared with refiner crops (``data_prep --refiner_crops``) hold
three more features, for the centre refiner (``centre_refiner``); the pose
pipeline's parse does not ask for them and never sees them:
  * ``refiner_depth``: R·R float32 bytes → (R, R, 1) normalized depth cut
    around the rough centre with the refiner cube;
  * ``rough_centre_xyz``: 3 floats, that rough centre in mm;
  * ``refiner_cube``: 3 floats, the refiner cube's edges in mm.
The refiner's target is ``centre_xyz``, the centre of the pose crop.
"""

import numpy as np
import tensorflow as tf

from jgr_p2o_tf import geometry

# Trailing shapes of the float features after parsing; None stands for J.
_FLOAT_SHAPES = {
    "joints_uvz": (None, 3),
    "joints_xyz": (None, 3),
    "joints_uvd": (None, 3),
    "centre_xyz": (3,),
    "cube": (3,),
    "affine": (2, 3),
    "camera": (4,),
}


def _shape(name, num_joints):
  return tuple(num_joints if n is None else n for n in _FLOAT_SHAPES[name])


def _float_feature(values):
  return tf.train.Feature(float_list=tf.train.FloatList(
      value=np.asarray(values, np.float32).ravel()))


def _bytes_feature(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _depth_bytes(depth):
  """A square (S, S[, 1]) crop → little-endian float32 bytes."""
  depth = np.asarray(depth, np.float32)
  if depth.ndim == 3:
    depth = depth[..., 0]
  if depth.ndim != 2 or depth.shape[0] != depth.shape[1]:
    raise ValueError(f"depth must be a square (S, S) crop, got {depth.shape}")
  # Explicit little-endian so that decode_raw reads the same on any host.
  return _bytes_feature(depth.astype("<f4").tobytes())


def serialize_example(*, depth, joints_uvz, joints_xyz, joints_uvd, centre_xyz,
                      cube, affine, camera, frame_id, refiner=None):
  """One crop and its metadata → serialized ``tf.train.Example`` bytes.

  Args:
    depth: (S, S) or (S, S, 1) normalized depth crop.
    joints_uvz: (J, 3) normalized UVZ.
    joints_xyz: (J, 3) xyz in mm.
    joints_uvd: (J, 3) full-frame uvd.
    centre_xyz: (3,) hand centre in mm.
    cube: (3,) cube edges in mm.
    affine: (2, 3) crop affine.
    camera: (4,) intrinsics fx, fy, cx, cy.
    frame_id: str or bytes.
    refiner: None, or a dict with the refiner crop ``depth`` (R, R),
      ``rough_centre_xyz`` (3,) and ``cube`` (3,).

  Returns:
    bytes.
  """
  num_joints = np.shape(joints_uvz)[0]
  values = dict(joints_uvz=joints_uvz, joints_xyz=joints_xyz,
                joints_uvd=joints_uvd, centre_xyz=centre_xyz, cube=cube,
                affine=affine, camera=camera)
  feature = {}
  for name, value in values.items():
    if np.shape(value) != _shape(name, num_joints):
      raise ValueError(f"{name} must have shape {_shape(name, num_joints)}, "
                       f"got {np.shape(value)}")
    feature[name] = _float_feature(value)
  feature["depth"] = _depth_bytes(depth)
  if refiner is not None:
    feature["refiner_depth"] = _depth_bytes(refiner["depth"])
    for name, key in (("rough_centre_xyz", "rough_centre_xyz"),
                      ("refiner_cube", "cube")):
      if np.shape(refiner[key]) != (3,):
        raise ValueError(f"refiner {key} must have shape (3,), got "
                         f"{np.shape(refiner[key])}")
      feature[name] = _float_feature(refiner[key])
  if isinstance(frame_id, str):
    frame_id = frame_id.encode("utf-8")
  feature["frame_id"] = _bytes_feature(frame_id)
  # Deterministic: feature is a protobuf map, whose order would otherwise
  # vary between processes, and equal crops should give equal bytes.
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString(deterministic=True)


def feature_spec(num_joints):
  """The ``tf.io.parse_example`` feature spec for crops of J joints."""
  spec = {name: tf.io.FixedLenFeature([int(np.prod(_shape(name, num_joints)))],
                                      tf.float32)
          for name in _FLOAT_SHAPES}
  spec["depth"] = tf.io.FixedLenFeature([], tf.string)
  spec["frame_id"] = tf.io.FixedLenFeature([], tf.string)
  return spec


def parse_example(serialized, num_joints, crop_size=geometry.CROP_SIZE):
  """Serialized examples → dict of tensors.

  Args:
    serialized: scalar or (B,) string tensor of serialized examples; parsing
      a whole batch at once is much cheaper than one example at a time.
    num_joints: J.
    crop_size: S.

  Returns:
    dict with ``depth`` (..., S, S, 1) float32, ``joints_uvz``,
    ``joints_xyz``, ``joints_uvd`` (..., J, 3), ``centre_xyz``, ``cube``
    (..., 3), ``affine`` (..., 2, 3), ``camera`` (..., 4) float32 and
    ``frame_id`` (...) string, where ... is the shape of ``serialized``.
  """
  parsed = tf.io.parse_example(serialized, feature_spec(num_joints))
  outer = tf.shape(serialized)
  out = {}
  for name in _FLOAT_SHAPES:
    out[name] = tf.reshape(parsed[name],
                           tf.concat([outer, _shape(name, num_joints)], 0))
  depth = tf.io.decode_raw(parsed["depth"], tf.float32, little_endian=True)
  out["depth"] = tf.reshape(depth,
                            tf.concat([outer, [crop_size, crop_size, 1]], 0))
  out["frame_id"] = parsed["frame_id"]
  return out


def parse_refiner_example(serialized, crop_size):
  """Serialized examples with refiner crops → the refiner's inputs.

  Args:
    serialized: scalar or (B,) string tensor.
    crop_size: R, the refiner crop's size.

  Returns:
    dict with ``refiner_depth`` (..., R, R, 1), ``rough_centre_xyz``,
    ``centre_xyz``, ``refiner_cube`` (..., 3) and ``camera`` (..., 4)
    float32.
  """
  parsed = tf.io.parse_example(serialized, {
      "refiner_depth": tf.io.FixedLenFeature([], tf.string),
      "rough_centre_xyz": tf.io.FixedLenFeature([3], tf.float32),
      "centre_xyz": tf.io.FixedLenFeature([3], tf.float32),
      "refiner_cube": tf.io.FixedLenFeature([3], tf.float32),
      "camera": tf.io.FixedLenFeature([4], tf.float32)})
  outer = tf.shape(serialized)
  depth = tf.io.decode_raw(parsed.pop("refiner_depth"), tf.float32,
                           little_endian=True)
  parsed["refiner_depth"] = tf.reshape(
      depth, tf.concat([outer, [crop_size, crop_size, 1]], 0))
  return parsed
