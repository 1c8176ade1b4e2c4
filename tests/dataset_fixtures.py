"""Tiny datasets written in each exact on-disk format, for tests.

Each ``write_*`` function writes a few frames under ``root`` and returns the
``Frame`` objects a correct reader must give back, in reader order. The depth
images show one sphere per joint (a crude hand) in front of a far wall with a
hole in it, so centre finding and cropping have something to work on; depths
exceed 255 mm so that both bytes of a 16-bit depth matter.
"""

import json
import os

import cv2
import numpy as np
import scipy.io

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.datasets import frame as frame_lib
from jgr_p2o_tf.datasets import msra

JOINT_RADIUS_MM = 12.0


def random_hand_xyz(rng, num_joints, depth_mm):
  """(J, 3) float64 joints scattered like a hand about depth_mm, z > 0."""
  centre = np.array([rng.uniform(-40, 40), rng.uniform(-40, 40),
                     depth_mm + rng.uniform(-30, 30)])
  return centre + rng.uniform(-60, 60, (num_joints, 3))


def render_hand(joints_uvd, camera, *, wall_mm=None,
                radius_mm=JOINT_RADIUS_MM):
  """(H, W) float32 depth of one sphere per joint, 0 where there is nothing.

  Args:
    joints_uvd: (J, 3) joints.
    camera: Camera.
    wall_mm: depth of a background wall with a rectangular hole (0) in its
      top-left corner, or None for no background.
    radius_mm: sphere radius.
  """
  focal = abs(camera.fx)
  depth = np.full((camera.height, camera.width), np.inf)
  for u, v, d in joints_uvd:
    # Only the sphere's bounding square of pixels needs rendering.
    reach = radius_mm * focal / d + 1
    r0, r1 = max(int(v - reach), 0), min(int(v + reach) + 2, camera.height)
    c0, c1 = max(int(u - reach), 0), min(int(u + reach) + 2, camera.width)
    rows, cols = np.mgrid[r0:r1, c0:c1]
    # Distance across the image plane at the sphere's depth, in mm.
    rho = np.hypot(cols - u, rows - v) * d / focal
    surface = d - np.sqrt(np.maximum(radius_mm**2 - rho**2, 0.0))
    window = depth[r0:r1, c0:c1]
    window[rho < radius_mm] = np.minimum(window, surface)[rho < radius_mm]
  if wall_mm is None:
    depth[np.isinf(depth)] = 0.0
  else:
    depth[np.isinf(depth)] = wall_mm
    depth[:camera.height // 8, :camera.width // 8] = 0.0
  return depth.astype(np.float32)


def write_nyu(root, num_frames, split="train", seed=0):
  """Writes ``{root}/{split}/joint_data.mat`` and depth_1_*.png (and 2, 3)."""
  rng = np.random.default_rng(seed)
  camera = dataset_profiles.NYU.camera
  split_dir = os.path.join(root, split)
  os.makedirs(split_dir, exist_ok=True)
  # Different joints per Kinect, so reading the wrong one shows.
  xyz = np.stack([
      np.stack([random_hand_xyz(rng, 36, 700.0) for _ in range(num_frames)])
      for _ in range(3)])
  uvd = geometry.xyz_to_uvd(xyz, camera)
  scipy.io.savemat(os.path.join(split_dir, "joint_data.mat"),
                   {"joint_uvd": uvd, "joint_xyz": xyz,
                    "joint_names": np.array([f"joint {j}" for j in range(36)],
                                            dtype=object)})
  eval_joints = list(skeletons.NYU_EVAL_JOINTS)
  frames = []
  for i in range(num_frames):
    depth = np.round(render_hand(uvd[0, i], camera, wall_mm=1400.0))
    packed = depth.astype(np.uint16)
    bgr = np.stack([packed & 0xFF, packed >> 8,
                    np.full_like(packed, 77)], axis=-1).astype(np.uint8)
    name = f"depth_1_{i + 1:07d}.png"
    cv2.imwrite(os.path.join(split_dir, name), bgr)
    frames.append(frame_lib.Frame(
        frame_id=f"{split}/{name}", depth_mm=depth,
        joints_uvd=uvd[0, i, eval_joints].astype(np.float32),
        joints_xyz=xyz[0, i, eval_joints].astype(np.float32), camera=camera))
  return frames


def _label_lines(names, joints_uvd):
  """ICVL label lines and the float32 uvd a reader parses back from them."""
  lines, parsed = [], []
  for name, uvd in zip(names, joints_uvd):
    values = " ".join(f"{x:.4f}" for x in uvd.ravel())
    lines.append(f"{name} {values}\n")
    parsed.append(np.array(values.split(), np.float64).astype(
        np.float32).reshape(-1, 3))
  return lines, parsed


def _write_label_frames(label_path, image_dir, names, camera, rng,
                        num_joints, depth_mm):
  """Writes 16-bit PNGs and a label file; returns the expected Frames."""
  joints_uvd = [geometry.xyz_to_uvd(random_hand_xyz(rng, num_joints, depth_mm),
                                    camera) for _ in names]
  lines, parsed = _label_lines(names, joints_uvd)
  os.makedirs(os.path.dirname(label_path), exist_ok=True)
  with open(label_path, "w") as f:
    f.writelines(lines)
  frames = []
  for name, uvd in zip(names, parsed):
    depth = np.round(render_hand(uvd, camera, wall_mm=depth_mm + 600.0))
    path = os.path.join(image_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, depth.astype(np.uint16))
    frames.append(frame_lib.Frame(
        frame_id=name, depth_mm=depth, joints_uvd=uvd,
        joints_xyz=geometry.uvd_to_xyz(uvd, camera), camera=camera))
  return frames


def write_icvl(root, num_frames, split="train", seed=0):
  """Writes ICVL's real layout: Training/labels.txt + Training/Depth/, or
  Testing/test_seq_{1,2}.txt + Testing/Depth/ (frames split between them)."""
  rng = np.random.default_rng(seed)
  camera = dataset_profiles.ICVL.camera
  if split == "train":
    names = [f"201403121135/image_{i:04d}.png" for i in range(num_frames)]
    return _write_label_frames(
        os.path.join(root, "Training", "labels.txt"),
        os.path.join(root, "Training", "Depth"), names, camera, rng, 16, 350.0)
  first = (num_frames + 1) // 2
  frames = []
  for seq, count in ((1, first), (2, num_frames - first)):
    names = [f"test_seq_{seq}/image_{i:04d}.png" for i in range(count)]
    frames += _write_label_frames(
        os.path.join(root, "Testing", f"test_seq_{seq}.txt"),
        os.path.join(root, "Testing", "Depth"), names, camera, rng, 16, 350.0)
  return frames


# A camera unlike ICVL's, so that a reader ignoring camera.json fails.
SYNTHETIC_CAMERA = geometry.Camera(200.0, 210.0, 81.0, 59.0, 160, 120)


def write_synthetic(root, num_frames, split="train", num_joints=21,
                    layout=None, camera=SYNTHETIC_CAMERA, seed=0):
  """Writes the generator's format: {root}/{split}/labels.txt, camera.json and
  depth/NNNNNN.png; ``layout`` given → camera.json names it."""
  rng = np.random.default_rng(seed)
  split_dir = os.path.join(root, split)
  os.makedirs(split_dir, exist_ok=True)
  contents = {"fx": camera.fx, "fy": camera.fy, "cx": camera.cx,
              "cy": camera.cy, "width": camera.width, "height": camera.height}
  if layout is not None:
    contents["layout"] = layout
  with open(os.path.join(split_dir, "camera.json"), "w") as f:
    json.dump(contents, f)
  names = [f"depth/{i:06d}.png" for i in range(num_frames)]
  return _write_label_frames(os.path.join(split_dir, "labels.txt"), split_dir,
                             names, camera, rng, num_joints, 400.0)


def write_msra_bin(path, depth):
  """Writes an MSRA .bin: header, then the bounding box of depth > 0."""
  rows, cols = np.nonzero(depth)
  top, bottom = rows.min(), rows.max() + 1
  left, right = cols.min(), cols.max() + 1
  height, width = depth.shape
  with open(path, "wb") as f:
    f.write(np.array([width, height, left, top, right, bottom], "<i4")
            .tobytes())
    f.write(depth[top:bottom, left:right].astype("<f4").tobytes())


def write_msra(root, subjects=("P0", "P1"), frames_per_gesture=1, seed=0):
  """Writes {root}/P?/{gesture}/joint.txt and NNNNNN_depth.bin for all 17
  gestures of each subject; joint.txt in MSRA's axes (y up, z negative)."""
  rng = np.random.default_rng(seed)
  camera = dataset_profiles.MSRA.camera
  frames = []
  for subject in subjects:
    for gesture in msra.GESTURES:
      folder = os.path.join(root, subject, gesture)
      os.makedirs(folder, exist_ok=True)
      lines = [f"{frames_per_gesture}\n"]
      for i in range(frames_per_gesture):
        xyz = random_hand_xyz(rng, 21, 350.0)
        values = " ".join(f"{x:.6f}" for x in (xyz * [1, -1, -1]).ravel())
        lines.append(values + "\n")
        xyz = (np.array(values.split(), np.float64).astype(np.float32)
               .reshape(21, 3) * np.float32([1, -1, -1]))
        uvd = geometry.xyz_to_uvd(xyz, camera)
        depth = render_hand(uvd, camera)
        write_msra_bin(os.path.join(folder, f"{i:06d}_depth.bin"), depth)
        frames.append(frame_lib.Frame(
            frame_id=f"{subject}/{gesture}/{i:06d}", depth_mm=depth,
            joints_uvd=uvd, joints_xyz=xyz, camera=camera))
      with open(os.path.join(folder, "joint.txt"), "w") as f:
        f.writelines(lines)
  return frames


def write_centre_file(path, centres):
  """Writes V2V-PoseNet's centre format; None → ``invalid``."""
  with open(path, "w") as f:
    for centre in centres:
      f.write("invalid\n" if centre is None else
              " ".join(f"{x:.6f}" for x in centre) + "\n")
