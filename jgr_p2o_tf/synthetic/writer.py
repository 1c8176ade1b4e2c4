"""Writes synthetic frames in the ICVL on-disk format.

``generate(out_dir, ...)`` lays out::

  out_dir/images/image_000000.png   16-bit single-channel PNG, depth in mm
  out_dir/labels.txt                one line per frame:
                                    images/image_000000.png u1 v1 d1 … uJ vJ dJ
  out_dir/camera.json               {"fx", "fy", "cx", "cy", "width",
                                     "height", "layout"}

Image paths are relative to out_dir (the folder of labels.txt), which is
where ``datasets.icvl.IcvlReader(labels=...)`` and
``datasets.synthetic.SyntheticReader`` look for them. Joints are in the chosen
layout, uvd in full-frame pixels (integer pixel centres) and mm, with four
decimals. Every file is written to a temporary name and renamed, and
labels.txt last, so an interrupted run leaves no truncated file and no label
file pointing at missing images.
"""

import functools
import json
import multiprocessing
import os

import cv2
import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import progress as progress_lib
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.synthetic import scene

LABELS_FILE = "labels.txt"
CAMERA_FILE = "camera.json"
IMAGE_DIR = "images"
LAYOUTS = ("icvl", "nyu", "msra", "synthetic")
# The datasets whose cameras the generator imitates (dataset_profiles):
# 320×240 and 640×480.
CAMERAS = ("icvl", "nyu")
LABEL_DECIMALS = 4


def write_atomically(path, data):
  """Writes bytes to ``path`` through a temporary file and a rename."""
  temporary = f"{path}.tmp{os.getpid()}"
  with open(temporary, "wb") as f:
    f.write(data)
  os.replace(temporary, path)


def encode_png(depth):
  """uint16 (H, W) depth → PNG bytes."""
  ok, data = cv2.imencode(".png", depth)
  if not ok:
    raise ValueError(f"cannot encode a {depth.dtype} {depth.shape} PNG")
  return data.tobytes()


def label_line(image_path, joints_uvd):
  """``image_path u1 v1 d1 ...`` for (J, 3) joints, without a newline."""
  values = " ".join(f"{value:.{LABEL_DECIMALS}f}"
                    for value in np.ravel(joints_uvd))
  return f"{image_path} {values}"


def image_path(index, num_frames):
  """Relative path of frame ``index``'s PNG."""
  digits = max(6, len(str(num_frames - 1)))
  return f"{IMAGE_DIR}/image_{index:0{digits}d}.png"


def layout_uvd(joints_xyz, layout, camera):
  """(21, 3) physical-camera joints → (J, 3) uvd of ``layout``'s joints."""
  xyz = skeletons.synthetic_to_layout(layout).astype(np.float64) @ joints_xyz
  return geometry.xyz_to_uvd(xyz, scene.physical_camera(camera))


def _write_frame(out_dir, seed, num_frames, options, index):
  """Renders and writes frame ``index``; returns its label line."""
  frame = scene.render_frame(seed, index, options)
  path = image_path(index, num_frames)
  write_atomically(os.path.join(out_dir, path), encode_png(frame.depth))
  return label_line(path, layout_uvd(frame.joints_xyz, options.layout,
                                     options.camera))


def _check(name, ok, expected, value):
  if not ok:
    raise ValueError(f"{name} must be {expected}, got {value!r}")


def generate(out_dir, num_frames, seed, layout="icvl", camera="icvl",
             noise_mm=1.0, edge_dropout=0.3, background_plane=False,
             workers=2, progress=True):
  """Renders ``num_frames`` synthetic frames into ``out_dir``, ICVL format.

  The output depends only on the arguments other than ``workers`` and
  ``progress``: the same seed gives byte-identical files.

  Args:
    out_dir: folder to write (created if missing).
    num_frames: frames to render.
    seed: dataset seed; frame i uses ``np.random.default_rng([seed, i])``.
    layout: joints written: "icvl" (16), "nyu" (14), "msra" (21) or
      "synthetic" (all 21 of the hand model).
    camera: "icvl" (320×240) or "nyu" (640×480), or a geometry.Camera.
    noise_mm: standard deviation of the Gaussian depth noise.
    edge_dropout: chance that a silhouette-edge pixel has no depth.
    background_plane: put a plane (wall, table) behind each hand.
    workers: processes rendering frames; 1 renders in this one.
    progress: show a progress bar.

  Returns:
    Path of the labels file.

  Raises:
    ValueError: an argument out of range.
  """
  _check("num_frames", isinstance(num_frames, (int, np.integer))
         and num_frames >= 1, "a positive integer", num_frames)
  _check("seed", isinstance(seed, (int, np.integer)) and seed >= 0,
         "a non-negative integer", seed)
  _check("layout", layout in LAYOUTS, f"one of {LAYOUTS}", layout)
  if not isinstance(camera, geometry.Camera):
    _check("camera", camera in CAMERAS, f"one of {CAMERAS}", camera)
    camera = dataset_profiles.get_profile(camera).camera
  _check("noise_mm", noise_mm >= 0, "≥ 0", noise_mm)
  _check("edge_dropout", 0 <= edge_dropout <= 1, "in [0, 1]", edge_dropout)
  _check("workers", isinstance(workers, int) and workers >= 1,
         "a positive integer", workers)
  options = scene.FrameOptions(
      camera=camera, layout=layout, noise_mm=float(noise_mm),
      edge_dropout=float(edge_dropout),
      background_plane=bool(background_plane))

  os.makedirs(os.path.join(out_dir, IMAGE_DIR), exist_ok=True)
  write_frame = functools.partial(_write_frame, os.fspath(out_dir), int(seed),
                                  int(num_frames), options)
  bar = progress_lib.progress(num_frames, "synthetic frames", "frame",
                              disable=not progress)
  lines = []
  with bar:
    if workers == 1:
      for index in range(num_frames):
        lines.append(write_frame(index))
        bar.update()
    else:
      with multiprocessing.Pool(workers) as pool:
        for line in pool.imap(write_frame, range(num_frames), chunksize=8):
          lines.append(line)
          bar.update()

  contents = {"fx": camera.fx, "fy": camera.fy, "cx": camera.cx,
              "cy": camera.cy, "width": camera.width,
              "height": camera.height, "layout": layout}
  write_atomically(os.path.join(out_dir, CAMERA_FILE),
                   (json.dumps(contents, indent=2) + "\n").encode())
  labels = os.path.join(out_dir, LABELS_FILE)
  write_atomically(labels, ("\n".join(lines) + "\n").encode())
  return labels
