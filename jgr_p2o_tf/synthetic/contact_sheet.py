"""A contact sheet of synthetic frames with their skeletons, to look at.

``make_contact_sheet`` renders frames 0…n−1 of a seed exactly as ``generate``
writes them, crops each around its hand, colours the depth and draws the
bones of the 21-joint hand over it. ``python -m jgr_p2o_tf.synthetic
--contact_sheet=docs/synthetic_contact_sheet.png`` makes the one in docs/.
"""

import os

import cv2
import numpy as np

from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.synthetic import scene

_CROP_MARGIN_PX = 12
_NEAR_MARGIN_MM = 15.0


def _colourize(depth, near, far):
  """uint16 depth → BGR: red at ``near`` to blue at ``far`` mm, none black."""
  scaled = np.clip((far - depth.astype(np.float32)) / (far - near), 0.0, 1.0)
  image = cv2.applyColorMap((scaled * 255).astype(np.uint8),
                            cv2.COLORMAP_TURBO)
  image[depth == 0] = 0
  return image


def frame_tile(frame, camera, tile_px):
  """A square BGR tile of ``frame`` cropped around its hand, bones drawn."""
  uvd = geometry.xyz_to_uvd(frame.joints_xyz, camera)
  low = np.floor(uvd[:, :2].min(axis=0)) - _CROP_MARGIN_PX
  high = np.ceil(uvd[:, :2].max(axis=0)) + _CROP_MARGIN_PX
  side = int(max(high - low))
  corner = ((low + high) / 2 - side / 2).astype(int)
  # Pad so that a crop reaching past the border stays square.
  # The colours span the hand's depth, so the fingers' relief shows.
  # The surface lies up to a radius in front of the joints.
  coloured = _colourize(frame.depth, uvd[:, 2].min() - _NEAR_MARGIN_MM,
                        uvd[:, 2].max())
  image = cv2.copyMakeBorder(coloured, side, side, side, side,
                             cv2.BORDER_CONSTANT)
  u0, v0 = corner + side
  tile = cv2.resize(image[v0:v0 + side, u0:u0 + side], (tile_px, tile_px),
                    interpolation=cv2.INTER_NEAREST)
  scale = tile_px / side
  points = np.rint((uvd[:, :2] - corner + 0.5) * scale - 0.5).astype(int)
  hand = skeletons.SYNTHETIC
  # A black edge keeps the fingers' colours apart from the depth's.
  for i, j in hand.bones:
    cv2.line(tile, tuple(points[i]), tuple(points[j]), (0, 0, 0), 4,
             cv2.LINE_AA)
  for (i, j), finger in zip(hand.bones, hand.bone_fingers):
    bgr = skeletons.FINGER_COLORS[finger][::-1]
    cv2.line(tile, tuple(points[i]), tuple(points[j]), bgr, 2, cv2.LINE_AA)
  for point in points:
    cv2.circle(tile, tuple(point), 3, (0, 0, 0), -1, cv2.LINE_AA)
  return tile


def make_contact_sheet(path, seed=0, options=None, num_frames=16, columns=4,
                       tile_px=300):
  """Writes a grid of frames 0…num_frames−1 of ``seed`` as a PNG.

  Args:
    path: the PNG to write.
    seed: the dataset seed.
    options: scene.FrameOptions, default ones if None.
    num_frames: tiles in the sheet.
    columns: tiles per row.
    tile_px: side of a tile; the sheet is ``columns * tile_px`` wide.

  Returns:
    path.
  """
  options = options or scene.FrameOptions()
  camera = scene.physical_camera(options.camera)
  tiles = [frame_tile(scene.render_frame(seed, i, options), camera, tile_px)
           for i in range(num_frames)]
  tiles += [np.zeros_like(tiles[0])] * (-num_frames % columns)
  rows = [np.concatenate(tiles[r:r + columns], axis=1)
          for r in range(0, len(tiles), columns)]
  sheet = np.concatenate(rows, axis=0)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  ok, data = cv2.imencode(".png", sheet)
  if not ok:
    raise ValueError(f"cannot encode the contact sheet for {path}")
  temporary = f"{path}.tmp{os.getpid()}"
  with open(temporary, "wb") as f:
    f.write(data.tobytes())
  os.replace(temporary, path)
  return path
