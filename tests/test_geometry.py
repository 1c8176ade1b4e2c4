"""Camera projection, cube crops and normalization (jgr_p2o_tf.geometry)."""

import math

import numpy as np
import pytest

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry

S = geometry.CROP_SIZE
CROP_CASES = [  # camera, cube edge, centre depth
    (dataset_profiles.NYU.camera, dataset_profiles.NYU.cube_mm, 750.0),
    (dataset_profiles.ICVL.camera, dataset_profiles.ICVL.cube_mm, 350.0),
    (dataset_profiles.MSRA.camera, dataset_profiles.MSRA.cube_mm, 330.0),
]


# Every dataset's camera and evaluation intrinsics.
CAMERAS = {
    **{p.name: p.camera for p in dataset_profiles.PROFILES.values()},
    **{f"{p.name}_eval": p.evaluation_camera
       for p in dataset_profiles.PROFILES.values() if p.evaluation_camera}}


def random_uvd(rng, camera, shape, depth=(200.0, 1500.0)):
  return np.stack([rng.uniform(0, camera.width - 1, shape),
                   rng.uniform(0, camera.height - 1, shape),
                   rng.uniform(*depth, shape)], axis=-1)


def random_centre_xyz(rng, camera, depth):
  """A centre that projects well inside the image."""
  uvd = np.array([rng.uniform(0.2, 0.8) * camera.width,
                  rng.uniform(0.2, 0.8) * camera.height, depth])
  return geometry.uvd_to_xyz(uvd, camera).astype(np.float32)


@pytest.mark.parametrize("camera", CAMERAS.values(), ids=CAMERAS.keys())
def test_uvd_xyz_round_trip(camera):
  rng = np.random.default_rng(0)
  uvd = random_uvd(rng, camera, (4, 5))
  xyz = geometry.uvd_to_xyz(uvd, camera)
  assert xyz.shape == (4, 5, 3)
  np.testing.assert_allclose(geometry.xyz_to_uvd(xyz, camera), uvd, atol=1e-9)
  uvd32 = uvd.astype(np.float32)
  back = geometry.xyz_to_uvd(geometry.uvd_to_xyz(uvd32, camera), camera)
  assert back.dtype == np.float32
  np.testing.assert_allclose(back, uvd32, atol=1e-3)
  # (..., 4) intrinsics act like the Camera.
  np.testing.assert_allclose(
      geometry.uvd_to_xyz(uvd32, np.broadcast_to(camera.intrinsics, (4, 5, 4))),
      geometry.uvd_to_xyz(uvd32, camera), rtol=1e-6)


def test_nyu_y_points_up():
  above_centre = np.array([320.0, 100.0, 700.0])
  assert geometry.uvd_to_xyz(above_centre, dataset_profiles.NYU.camera)[1] > 0
  assert geometry.uvd_to_xyz(above_centre, dataset_profiles.ICVL.camera)[1] < 0


@pytest.mark.parametrize("camera, cube, depth", CROP_CASES)
def test_crop_uncrop_round_trip(camera, cube, depth):
  rng = np.random.default_rng(1)
  cube = geometry.cube_vector(cube)
  for _ in range(5):
    centre_xyz = random_centre_xyz(rng, camera, depth)
    _, affine = geometry.crop_depth(
        np.zeros((camera.height, camera.width), np.float32), centre_xyz, cube,
        camera)
    joints_xyz = (centre_xyz + rng.uniform(-0.5, 0.5, (21, 3)) * cube).astype(
        np.float32)
    joints_uvd = geometry.xyz_to_uvd(joints_xyz, camera)
    uvz = geometry.uvd_to_normalized(joints_uvd, affine, centre_xyz[2], cube)
    assert uvz.dtype == np.float32
    assert np.all(np.abs(uvz[:, 2]) <= 1.0 + 1e-6)
    back = geometry.normalized_to_uvd(uvz, affine, centre_xyz[2], cube)
    np.testing.assert_allclose(back, joints_uvd, atol=1e-3)
    np.testing.assert_allclose(
        geometry.normalized_to_xyz(uvz, affine, centre_xyz[2], cube, camera),
        joints_xyz, atol=1e-3)


@pytest.mark.parametrize("camera, cube, depth", CROP_CASES)
def test_cube_fills_the_crop(camera, cube, depth):
  rng = np.random.default_rng(2)
  cube = geometry.cube_vector(cube).astype(np.float64)
  centre_xyz = random_centre_xyz(rng, camera, depth).astype(np.float64)
  half = cube / 2.0
  centre_uvd = geometry.xyz_to_uvd(centre_xyz, camera)
  points_uvd = np.stack([
      centre_uvd,
      geometry.xyz_to_uvd(centre_xyz + [half[0], 0, 0], camera),
      geometry.xyz_to_uvd(centre_xyz + [0, half[1], 0], camera),
      centre_uvd + [0, 0, half[2]],
  ])
  affine = geometry.crop_affine(centre_uvd, cube, camera)
  uvz = geometry.uvd_to_normalized(points_uvd, affine, centre_xyz[2], cube)
  # +y is down the image, except with NYU's negative fy (y up).
  v_edge = 1.0 if camera.fy > 0 else 0.0
  np.testing.assert_allclose(
      uvz, [[0.5, 0.5, 0.0], [1.0, 0.5, 0.0], [0.5, v_edge, 0.0],
            [0.5, 0.5, 1.0]], atol=1e-9)


def test_batched_normalization_round_trip():
  rng = np.random.default_rng(3)
  camera = dataset_profiles.ICVL.camera
  centres_xyz = np.stack([random_centre_xyz(rng, camera, 350.0)
                          for _ in range(3)]).astype(np.float64)
  cubes = np.array([[250.0] * 3, [200.0, 220.0, 240.0], [300.0] * 3])
  affine = geometry.crop_affine(geometry.xyz_to_uvd(centres_xyz, camera),
                                cubes, camera)
  assert affine.shape == (3, 2, 3)
  joints_uvd = geometry.xyz_to_uvd(
      centres_xyz[:, None] + rng.uniform(-80, 80, (3, 16, 3)), camera)
  uvz = geometry.uvd_to_normalized(joints_uvd, affine, centres_xyz[:, 2],
                                   cubes)
  np.testing.assert_allclose(
      geometry.normalized_to_uvd(uvz, affine, centres_xyz[:, 2], cubes),
      joints_uvd, atol=1e-9)
  for b in range(3):
    np.testing.assert_allclose(
        uvz[b], geometry.uvd_to_normalized(joints_uvd[b], affine[b],
                                           centres_xyz[b, 2], cubes[b]),
        atol=1e-12)


def test_coordinate_conventions_map_crop_pixels():
  pixels = np.array([0.0, 47.5, 95.0])
  np.testing.assert_allclose(
      geometry.pixel_to_normalized(pixels, S, "project"),
      [0.5 / 96, 0.5, 95.5 / 96])
  # The authors' labels: crop pixel / 95, so pixels 0 and 95 are 0 and 1.
  np.testing.assert_allclose(
      geometry.pixel_to_normalized(pixels, S, "authors"), [0.0, 0.5, 1.0])
  for convention in geometry.COORDINATE_CONVENTIONS:
    np.testing.assert_allclose(geometry.normalized_to_pixel(
        geometry.pixel_to_normalized(pixels, S, convention), S, convention),
                               pixels, atol=1e-12)
  with pytest.raises(ValueError, match="Unknown coordinate convention 'tf1'"):
    geometry.pixel_to_normalized(pixels, S, "tf1")


def test_convert_uvz_keeps_the_full_frame_joints():
  import keras  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(7)
  camera, cube = dataset_profiles.get_profile("nyu").camera, geometry.cube_vector(250.0)
  centre_xyz = random_centre_xyz(rng, camera, 700.0).astype(np.float64)
  affine = geometry.crop_affine(geometry.xyz_to_uvd(centre_xyz, camera), cube,
                                camera)
  joints_uvd = geometry.xyz_to_uvd(
      centre_xyz + rng.uniform(-100, 100, (14, 3)), camera)
  project = geometry.uvd_to_normalized(joints_uvd, affine, centre_xyz[2], cube)
  authors = geometry.uvd_to_normalized(joints_uvd, affine, centre_xyz[2], cube,
                                       convention="authors")
  crop_pixels = geometry.apply_affine(affine, joints_uvd[:, :2])
  np.testing.assert_allclose(authors[:, :2], crop_pixels / 95, atol=1e-12)
  np.testing.assert_array_equal(authors[:, 2], project[:, 2])
  np.testing.assert_allclose(geometry.convert_uvz(authors, S, "authors"),
                             project, atol=1e-12)
  np.testing.assert_allclose(
      geometry.convert_uvz(project, S, "project", "authors"), authors,
      atol=1e-12)
  np.testing.assert_allclose(
      geometry.normalized_to_uvd(authors, affine, centre_xyz[2], cube,
                                 convention="authors"), joints_uvd, atol=1e-9)
  # Backend tensors (the train step, the exported graph) give the same.
  converted = geometry.convert_uvz(
      keras.ops.convert_to_tensor(authors.astype(np.float32)), S, "authors")
  np.testing.assert_allclose(keras.ops.convert_to_numpy(converted), project,
                             atol=1e-6)


@pytest.mark.parametrize("camera, cube, depth", CROP_CASES)
def test_disc_in_depth_lands_at_its_normalized_uvz(camera, cube, depth):
  rng = np.random.default_rng(4)
  cube = geometry.cube_vector(cube)
  for _ in range(3):
    centre_xyz = random_centre_xyz(rng, camera, depth)
    joint_xyz = centre_xyz + rng.uniform(-0.35, 0.35, 3) * cube
    u, v, d = geometry.xyz_to_uvd(joint_xyz.astype(np.float64), camera)
    rows, cols = np.mgrid[:camera.height, :camera.width]
    disc = np.hypot(cols - u, rows - v) <= 4.0
    # The disc in front of a wall beyond the cube.
    image = np.where(disc, d, depth + 1000.0).astype(np.float32)
    crop, affine = geometry.crop_depth(image, centre_xyz, cube, camera)
    assert crop.shape == (S, S) and crop.dtype == np.float32
    crop_rows, crop_cols = np.nonzero(crop != 1.0)
    assert crop_rows.size > 0
    found_uv = [(crop_cols.mean() + 0.5) / S, (crop_rows.mean() + 0.5) / S]
    uvz = geometry.uvd_to_normalized(np.float32([[u, v, d]]), affine,
                                     centre_xyz[2], cube)[0]
    np.testing.assert_allclose(found_uv, uvz[:2], atol=1.0 / S)
    np.testing.assert_allclose(crop[crop_rows, crop_cols], uvz[2], atol=1e-5)


def test_normalize_depth():
  depth = np.array([[0.0, 600.0, 700.0, 800.0],
                    [599.0, 801.0, 650.0, 5000.0]], np.float32)
  expected = np.array([[1.0, -1.0, 0.0, 1.0],
                       [1.0, 1.0, -0.5, 1.0]], np.float32)
  np.testing.assert_array_equal(geometry.normalize_depth(depth, 700.0, 200.0),
                                expected)
  # Broadcasting over a batch with a channel axis.
  batch = np.stack([depth, depth + 100.0])[..., None]
  centre = np.float32([700.0, 800.0])[:, None, None, None]
  np.testing.assert_array_equal(
      geometry.normalize_depth(batch, centre, 200.0)[..., 0],
      [expected, np.where(depth == 0, 1.0, expected)])


def test_crop_beyond_the_image_border_is_background():
  camera = dataset_profiles.ICVL.camera
  image = np.full((camera.height, camera.width), 350.0, np.float32)
  centre_xyz = geometry.uvd_to_xyz(np.array([2.0, 2.0, 350.0]), camera)
  crop, _ = geometry.crop_depth(image, centre_xyz, 250.0, camera)
  # Crop rows and columns left of and above the centre lie outside the frame.
  assert np.all(crop[:S // 2 - 2] == 1.0)
  assert np.all(crop[:, :S // 2 - 2] == 1.0)
  assert np.all(crop[S // 2 + 2:, S // 2 + 2:] == 0.0)


def _tie_lines(inverse_affine, axis):
  """Crop rows (axis 1) or columns (axis 0) whose source coordinate is a
  rounding tie: within 1e-3 px of a half-integer."""
  index = np.arange(S)
  source = inverse_affine[axis, axis] * index + inverse_affine[axis, 2]
  return np.abs(source - np.floor(source) - 0.5) < 1e-3


def test_gather_crop_picks_the_pixels_of_the_in_graph_crop():
  """crop_depth_by_gather (XLA) picks exactly ImageProjectiveTransformV3's
  pixels, eagerly and compiled, borders and holes included."""
  tf = pytest.importorskip("tensorflow")
  rng = np.random.default_rng(6)
  camera = dataset_profiles.ICVL.camera
  image = rng.uniform(300.0, 900.0, (1, camera.height, camera.width, 1))
  image[rng.random(image.shape) < 0.1] = 0.0
  batch = 8
  centres_xyz = [random_centre_xyz(rng, camera, 600.0) for _ in range(batch)]
  # One at the frame's corner, so that the crop reaches outside the frame.
  centres_xyz[0] = geometry.uvd_to_xyz(np.float32([3.0, 5.0, 500.0]), camera)
  centres_xyz = np.float32(centres_xyz)
  intrinsics = np.tile(camera.intrinsics, (batch, 1)).astype(np.float32)
  affines = geometry.crop_affine(geometry.xyz_to_uvd(centres_xyz, camera),
                                 np.float32([400.0] * 3), intrinsics, 32)
  arguments = (tf.constant(np.repeat(image, batch, 0).astype(np.float32)),
               tf.constant(affines.astype(np.float32)),
               tf.constant(centres_xyz[:, 2]), tf.fill([batch], 400.0))
  expected = geometry.crop_depth_in_graph(*arguments, 32).numpy()
  np.testing.assert_array_equal(
      geometry.crop_depth_by_gather(*arguments, 32).numpy(), expected)
  compiled = tf.function(
      lambda *a: geometry.crop_depth_by_gather(*a, 32), jit_compile=True)
  # XLA divides by a reciprocal: the same pixels, values within rounding.
  np.testing.assert_allclose(compiled(*arguments).numpy(), expected,
                             atol=1e-6, rtol=0)
  assert (expected == 1.0).mean() < 0.9  # the crops hold the frame


def test_crop_in_graph_equals_opencv_crop():
  tf = pytest.importorskip("tensorflow")
  rng = np.random.default_rng(5)
  camera = dataset_profiles.NYU.camera
  image = rng.uniform(500.0, 1000.0, (camera.height, camera.width)).astype(
      np.float32)
  image[rng.random(image.shape) < 0.1] = 0.0
  centres_xyz = [random_centre_xyz(rng, camera, 750.0) for _ in range(6)]
  # Near the border, so the crop samples outside the frame.
  centres_xyz.append(geometry.uvd_to_xyz(
      np.float32([15.0, 460.0, 600.0]), camera).astype(np.float32))
  # A crop column of this one falls within 1e-5 px of a rounding tie.
  centres_xyz.append(np.float32([6.4531875, -163.90913, 985.0019]))
  crops, affines = zip(*(geometry.crop_depth(image, c, 300.0, camera)
                         for c in centres_xyz))
  batch = len(crops)
  in_graph = geometry.crop_depth_in_graph(
      tf.constant(np.broadcast_to(image[None, ..., None],
                                  (batch,) + image.shape + (1,))),
      tf.constant(np.stack(affines)),
      tf.constant(np.float32([c[2] for c in centres_xyz])),
      tf.fill([batch], 300.0)).numpy()
  assert in_graph.shape == (batch, S, S, 1)
  exact = 0
  for b in range(batch):
    differ = in_graph[b, ..., 0] != crops[b]
    # OpenCV rounds source coordinates in 1/1024 px fixed point, TensorFlow
    # in float32: at a tie they may take neighbouring pixels.
    inverse = geometry.invert_affine(affines[b].astype(np.float64))
    ties = _tie_lines(inverse, 1)[:, None] | _tie_lines(inverse, 0)[None, :]
    assert not np.any(differ & ~ties), b
    exact += not differ.any()
  assert exact >= batch - 1


def _authors_crop_reference(depth_mm, centre_xyz, cube_mm, camera, size=96):
  """The authors' crop, pixel by pixel, from its description alone.

  Window edges: the projected cube's edges rounded to whole pixels. Output
  pixel (row i, column j) of the resized window shows window pixel
  (floor(i h / h'), floor(j w / w')), beyond the frame no depth; depths
  outside 10–1500 mm are no depth; no depth is 1, nearer than the cube -1,
  farther 1, else (d - zc) / (cube / 2).
  """
  x, y, z = (float(c) for c in centre_xyz)
  u = x * camera.fx / z + camera.cx
  v = y * camera.fy / z + camera.cy
  half_u = cube_mm / 2 * abs(camera.fx) / z
  half_v = cube_mm / 2 * abs(camera.fy) / z
  left, right = math.floor(u - half_u + 0.5), math.floor(u + half_u + 0.5)
  top, bottom = math.floor(v - half_v + 0.5), math.floor(v + half_v + 0.5)
  w, h = right - left, bottom - top
  longest = max(w, h)
  out_w, out_h = size * w // longest, size * h // longest
  off_x, off_y = (size - out_w) // 2, (size - out_h) // 2
  crop = np.ones((size, size))
  for i in range(out_h):
    for j in range(out_w):
      row, column = top + i * h // out_h, left + j * w // out_w
      d = 0.0
      if 0 <= row < depth_mm.shape[0] and 0 <= column < depth_mm.shape[1]:
        d = float(depth_mm[row, column])
      if not 10 <= d <= 1500:
        value = 1.0
      elif d < z - cube_mm / 2:
        value = -1.0
      elif d > z + cube_mm / 2:
        value = 1.0
      else:
        value = (d - z) / (cube_mm / 2)
      crop[off_y + i, off_x + j] = value
  s = size / longest
  affine = np.array([[s, 0, off_x - s * left], [0, s, off_y - s * top]])
  return crop, affine


@pytest.mark.parametrize("camera, centre, cube", [
    # NYU, the window reaching past the left and top edges of the frame.
    (geometry.Camera(588.03, -587.07, 320.0, 240.0, 640, 480),
     (-333.0, 250.0, 700.0), 250.0),
    # ICVL-like, a window narrower than tall (fx < fy), far hand.
    (geometry.Camera(231.0, 241.42, 160.0, 120.0, 320, 240),
     (13.0, -21.0, 523.7), 300.0),
])
def test_authors_crop_equals_its_description(camera, centre, cube):
  rng = np.random.default_rng(5)
  z = centre[2]
  depth = rng.uniform(z - cube / 2, z + cube / 2, (camera.height, camera.width))
  kind = rng.random(depth.shape)
  depth[kind < 0.1] = z - cube / 2 - 30.0  # nearer than the cube
  depth[(kind >= 0.1) & (kind < 0.2)] = z + cube / 2 + 30.0  # beyond it
  depth[(kind >= 0.2) & (kind < 0.25)] = 0.0  # holes
  depth[(kind >= 0.25) & (kind < 0.27)] = 1700.0  # beyond the sensor range
  depth = depth.astype(np.float32)
  crop, affine = geometry.crop_depth_authors(depth, np.float32(centre), cube,
                                             camera)
  expected_crop, expected_affine = _authors_crop_reference(depth, centre,
                                                           cube, camera)
  np.testing.assert_allclose(crop, expected_crop, rtol=0, atol=1e-5)
  np.testing.assert_allclose(affine, expected_affine, rtol=0, atol=1e-4)
  assert {-1.0, 1.0} <= set(np.unique(crop))
