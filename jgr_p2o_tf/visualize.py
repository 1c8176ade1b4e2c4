"""Figures shared by the evaluator, TensorBoard images and the notebooks.

Every function returns a ``matplotlib.figure.Figure``. Figures are made
without pyplot (an Agg canvas is attached directly), so plotting works on
headless machines and inside training loops without leaking pyplot's global
figures; notebooks display a returned Figure as any other.
``figure_to_png_bytes`` and ``figure_to_array`` turn a figure into what
``tf.summary.image`` takes.

Crop-space conventions (ARCHITECTURE.md): a crop is S×S normalized depth shown
with crop pixel centres at integer coordinates, so a normalized joint ``uv``
is drawn at pixel ``uv·S − 0.5``; the network's output grid h×w covers the
same square, its cell (i, j) centred at uv ``((j + 0.5)/w, (i + 0.5)/h)``.
Joints are in the project's coordinate convention; ``plot_offset_field``,
which draws a model's own grid and offsets, takes the model's.

Method results are the entries of an evaluation report (see
``jgr_p2o_tf.evaluation``): dicts with ``name``, ``mean_error_mm``,
``per_joint_error_mm`` and ``success_curves``.
"""

import io
import math

from matplotlib import colormaps as mpl_colormaps
from matplotlib import colors as mpl_colors
from matplotlib import figure as mpl_figure
from matplotlib import lines as mpl_lines
from matplotlib import patches as mpl_patches
from matplotlib import patheffects as mpl_patheffects
from matplotlib.backends import backend_agg
import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import metrics
from jgr_p2o_tf import skeletons

PRED_COLOR = "tab:red"
GT_COLOR = "tab:green"

_CURVE_LABELS = {
    "max_joint_error": "Frames with max joint error ≤ threshold (%)",
    "mean_joint_error": "Frames with mean joint error ≤ threshold (%)",
}


def new_figure(figsize):
  """An empty Figure on an Agg canvas, with constrained layout."""
  fig = mpl_figure.Figure(figsize=figsize, layout="constrained")
  backend_agg.FigureCanvasAgg(fig)
  return fig


def figure_to_png_bytes(fig, dpi=100):
  """The figure encoded as PNG bytes."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=dpi)
  return buffer.getvalue()


def figure_to_array(fig):
  """The figure rendered at its own dpi as an (H, W, 3) uint8 RGB array."""
  fig.canvas.draw()
  return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _figure_and_axes(ax, figsize, **subplot_kw):
  """The given axes and their figure, or a new figure with one axes."""
  if ax is None:
    fig = new_figure(figsize)
    return fig, fig.add_subplot(**subplot_kw)
  return ax.get_figure(root=True), ax


def _crop_2d(depth_crop):
  """(S, S) or (S, S, 1) crop → (S, S) array."""
  crop = np.asarray(depth_crop)
  if crop.ndim == 3 and crop.shape[-1] == 1:
    crop = crop[..., 0]
  if crop.ndim != 2:
    raise ValueError(f"expected an (S, S) or (S, S, 1) crop, got {crop.shape}")
  return crop


def uvz_to_crop_pixels(joints_uvz, crop_size, convention="project"):
  """(..., J, 2+) normalized UV(Z) → (..., J, 2) crop pixel coordinates."""
  return geometry.normalized_to_pixel(np.asarray(joints_uvz)[..., :2],
                                      crop_size, convention)


def _crop_extent(crop_size):
  """imshow extent covering the crop's outer pixel edges (row 0 at the top)."""
  return (-0.5, crop_size - 0.5, crop_size - 0.5, -0.5)


def _show_crop(ax, crop):
  """Draws a normalized depth crop in grey: near is dark, background white."""
  ax.imshow(crop, cmap="gray", vmin=-1.0, vmax=1.0, interpolation="nearest",
            extent=_crop_extent(crop.shape[0]))
  ax.set_xticks([])
  ax.set_yticks([])


def _draw_skeleton_2d(ax, pixels, skeleton, color, label, linestyle="-"):
  for i, j in skeleton.bones:
    ax.plot(pixels[[i, j], 0], pixels[[i, j], 1], color=color,
            linestyle=linestyle, linewidth=1.5, zorder=2)
  ax.scatter(pixels[:, 0], pixels[:, 1], s=18, color=color, label=label,
             edgecolors="white", linewidths=0.5, zorder=3)


def finger_color(finger):
  """A finger's colour (``skeletons.FINGER_COLORS``) for matplotlib."""
  return tuple(c / 255.0 for c in skeletons.FINGER_COLORS[finger])


def _draw_fingers_2d(ax, pixels, skeleton, linewidth=2.5):
  """Bones and joints coloured by finger, edged in black; a finger legend."""
  edge = [mpl_patheffects.withStroke(linewidth=linewidth + 2,
                                     foreground="black")]
  for (i, j), finger in zip(skeleton.bones, skeleton.bone_fingers):
    ax.plot(pixels[[i, j], 0], pixels[[i, j], 1], color=finger_color(finger),
            linewidth=linewidth, path_effects=edge, zorder=2)
  colors = [finger_color(f) for f in skeleton.joint_fingers]
  ax.scatter(pixels[:, 0], pixels[:, 1], s=22, c=colors, edgecolors="black",
             linewidths=0.8, zorder=3)
  return [mpl_lines.Line2D([], [], color=finger_color(f), linewidth=3,
                           label=f)
          for f in skeletons.FINGERS + (skeletons.PALM,)
          if f in skeleton.joint_fingers]


def hand_window(points_uv, frame_shape, margin=0.3, min_side_px=48):
  """The square view around a hand: (u0, u1, v0, v1) axis limits.

  The joints' bounding box, each side widened by ``margin`` of its larger
  edge (at least ``min_side_px`` in all), moved inside the frame where the
  frame is large enough.
  """
  height, width = frame_shape
  points = np.asarray(points_uv, np.float64)
  low, high = points.min(axis=0), points.max(axis=0)
  side = max(float((high - low).max()) * (1 + 2 * margin), min_side_px)
  side = min(side, max(height, width))
  centre = (low + high) / 2
  limits = []
  for c, size in zip(centre, (width, height)):
    start = min(max(c - side / 2, -0.5), size - 0.5 - side) if (
        side <= size) else (size - 1) / 2 - side / 2
    limits.append((start, start + side))
  (u0, u1), (v0, v1) = limits
  return u0, u1, v0, v1


def plot_crop_with_joints(depth_crop, joints_uvz, skeleton, gt_uvz=None,
                          ax=None, title=None):
  """A crop with predicted (and true) joints and bones on it.

  Args:
    depth_crop: (S, S) or (S, S, 1) normalized depth crop.
    joints_uvz: (J, 3) predicted normalized UVZ (only uv is drawn).
    skeleton: Skeleton or layout name, for the bones.
    gt_uvz: optional (J, 3) true normalized UVZ, drawn dashed in green.
    ax: axes to draw into; a new figure when None.
    title: optional axes title.

  Returns:
    The Figure.
  """
  skeleton = skeletons.get_skeleton(skeleton)
  crop = _crop_2d(depth_crop)
  size = crop.shape[0]
  fig, ax = _figure_and_axes(ax, (4, 4))
  _show_crop(ax, crop)
  if gt_uvz is not None:
    _draw_skeleton_2d(ax, uvz_to_crop_pixels(gt_uvz, size), skeleton,
                      GT_COLOR, "ground truth", linestyle="--")
  _draw_skeleton_2d(ax, uvz_to_crop_pixels(joints_uvz, size), skeleton,
                    PRED_COLOR, "prediction")
  # Joints predicted outside the crop must not rescale the image.
  ax.set_xlim(-0.5, size - 0.5)
  ax.set_ylim(size - 0.5, -0.5)
  if gt_uvz is not None:
    ax.legend(loc="lower right", fontsize="small")
  if title:
    ax.set_title(title)
  return fig


def plot_depth_with_joints(depth_mm, joints_uvd, skeleton, centre_uvd=None,
                           depth_range_mm=None, ax=None, title=None,
                           full_frame=False):
  """A depth frame with the predicted joints, zoomed to the hand.

  Bones and joints are coloured by finger (``skeletons.FINGER_COLORS``,
  legend); the depth has a colour bar in mm. The view is the square around
  the joints (``hand_window``); beside it, the whole frame with the view
  outlined. ``full_frame`` makes the view the whole frame, alone.

  Args:
    depth_mm: (H, W) depth in mm, 0 for holes (drawn white).
    joints_uvd: (J, 3) full-frame joints, u column and v row (pixel centres
      at integer coordinates) and depth; only uv is drawn.
    skeleton: Skeleton or layout name, for the bones and fingers.
    centre_uvd: optional (3,) hand centre the crop was taken around, marked
      with a cross.
    depth_range_mm: (near, far) depths drawn black to white; by default the
      joints' depths ± 100 mm, so the hand stands out from the background.
    ax: axes to draw the view into (then without the whole frame beside
      it); a new figure when None.
    title: optional axes title.
    full_frame: the view is the whole frame.

  Returns:
    The Figure: ``fig.axes`` holds the view, the whole frame (in a new
    figure, unless ``full_frame``) and the colour bar.
  """
  skeleton = skeletons.get_skeleton(skeleton)
  depth = np.asarray(depth_mm, np.float64)
  joints = np.asarray(joints_uvd, np.float64)
  height, width = depth.shape
  if depth_range_mm is None:
    depth_range_mm = (joints[:, 2].min() - 100.0, joints[:, 2].max() + 100.0)
  if full_frame:
    u0, u1, v0, v1 = -0.5, width - 0.5, -0.5, height - 0.5
  else:
    points = joints[:, :2] if centre_uvd is None else np.vstack(
        [joints[:, :2], np.asarray(centre_uvd, np.float64)[None, :2]])
    u0, u1, v0, v1 = hand_window(points, (height, width))
  overview = None
  if ax is not None:
    fig = ax.get_figure(root=True)
  elif full_frame:
    fig, ax = _figure_and_axes(None, (7.5, 5.6 * height / width + 0.6))
  else:
    fig = new_figure((9.0, 5.6))
    ax, overview = fig.subplots(1, 2, width_ratios=(2.4, 1))
  cmap = mpl_colormaps["gray"].with_extremes(bad="white")
  masked = np.ma.masked_less_equal(depth, 0.0)
  shown = dict(cmap=cmap, vmin=depth_range_mm[0], vmax=depth_range_mm[1],
               interpolation="nearest")
  image = ax.imshow(masked, **shown)
  handles = _draw_fingers_2d(ax, joints[:, :2], skeleton)
  if centre_uvd is not None:
    handles.append(ax.scatter(centre_uvd[0], centre_uvd[1], marker="+",
                              s=120, color="C0", linewidths=2, zorder=4,
                              label="hand centre"))
  # Joints predicted outside the frame must not rescale the image.
  ax.set_xlim(u0, u1)
  ax.set_ylim(v1, v0)
  ax.set_xticks([])
  ax.set_yticks([])
  if overview is not None:
    overview.imshow(masked, **shown)
    overview.add_patch(mpl_patches.Rectangle(
        (u0, v0), u1 - u0, v1 - v0, fill=False, edgecolor="C0",
        linewidth=1.5))
    overview.set_xlim(-0.5, width - 0.5)
    overview.set_ylim(height - 0.5, -0.5)
    overview.set_xticks([])
    overview.set_yticks([])
    overview.set_title("whole frame", fontsize="small")
    overview.legend(handles=handles, loc="upper center", fontsize="small",
                    bbox_to_anchor=(0.5, -0.05), ncols=2)
  else:
    ax.legend(handles=handles, loc="lower right", fontsize="small")
  fig.colorbar(image, ax=ax, shrink=0.8, label="depth (mm)")
  if title:
    ax.set_title(title)
  return fig


def plot_voting_maps(depth_crop, voting_maps, joint_names, joints_uvz=None,
                     ncols=None, cmap="jet", alpha=0.6, gt_uvz=None,
                     panel_inches=2.2):
  """One panel per joint: its voting map W_k overlaid on the crop.

  Each map keeps its grid cells (nearest-neighbour upsampling) and is scaled
  to its own maximum; cells below 1% of it are left transparent so the hand
  stays visible.

  Args:
    depth_crop: (S, S) or (S, S, 1) normalized depth crop.
    voting_maps: (h, w, J) voting weights on the output grid.
    joint_names: J names, the panel titles.
    joints_uvz: optional (J, 3) joints, each marked × on its own panel.
    ncols: panels per row; about a square grid by default.
    cmap: colormap of the weights.
    alpha: opacity of the maps.
    gt_uvz: optional (J, 3) true joints, each marked ○ on its own panel.
    panel_inches: the width of a panel.

  Returns:
    The Figure, with exactly J axes.
  """
  crop = _crop_2d(depth_crop)
  voting_maps = np.asarray(voting_maps)
  num_joints = voting_maps.shape[-1]
  if len(joint_names) != num_joints:
    raise ValueError(f"{num_joints} voting maps but {len(joint_names)} names")
  ncols = ncols or math.ceil(math.sqrt(num_joints))
  nrows = math.ceil(num_joints / ncols)
  fig = new_figure((panel_inches * ncols, 1.1 * panel_inches * nrows))
  axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
  for ax in axes[num_joints:]:
    fig.delaxes(ax)
  pixels = (None if joints_uvz is None
            else uvz_to_crop_pixels(joints_uvz, crop.shape[0]))
  gt_pixels = (None if gt_uvz is None
               else uvz_to_crop_pixels(gt_uvz, crop.shape[0]))
  for k, (ax, name) in enumerate(zip(axes, joint_names)):
    weights = voting_maps[..., k]
    _show_crop(ax, crop)
    peak = float(weights.max())
    ax.imshow(np.ma.masked_less(weights, 0.01 * peak), cmap=cmap, alpha=alpha,
              vmin=0.0, vmax=peak if peak > 0 else 1.0,
              interpolation="nearest", extent=_crop_extent(crop.shape[0]))
    if gt_pixels is not None:
      ax.scatter(gt_pixels[k, 0], gt_pixels[k, 1], marker="o", s=60,
                 facecolors="none", edgecolors=GT_COLOR, linewidths=1.8,
                 zorder=3)
    if pixels is not None:
      ax.scatter(pixels[k, 0], pixels[k, 1], marker="x", s=40, color="white",
                 linewidths=1.5, zorder=3)
    ax.set_title(name, fontsize="small")
  return fig


def plot_offset_field(depth_crop, offset_maps, voting_maps, joint_index,
                      joint_name=None, stride=2, hand_only=True,
                      min_relative_weight=0.0, ax=None, convention="project"):
  """Output-grid cells' predicted offsets to one joint, as arrows.

  An arrow starts at a cell centre and ends where that cell votes for the
  joint (cell uv + predicted uv offset), so its length is the offset: a
  trained model's arrows converge on the joint from all over the hand. Its
  colour is the cell's voting weight on a log scale, as a trained model's
  weights span orders of magnitude. The star marks the weighted vote, the
  joint's uv (paper Eq. 6). Drawn: every ``stride``-th cell in each
  direction, those on the hand (crop depth < 1, the background) unless not
  ``hand_only``.

  Args:
    depth_crop: (S, S) or (S, S, 1) normalized depth crop.
    offset_maps: (h, w, J, 3) offsets in normalized UVZ (joint − cell).
    voting_maps: (h, w, J) voting weights.
    joint_index: which joint.
    joint_name: its name, for the title.
    stride: draw every stride-th cell of each row and column.
    hand_only: leave out the cells on the background.
    min_relative_weight: leave out the cells with less than this fraction of
      the largest weight (0: none).
    ax: axes to draw into; a new figure when None.
    convention: the model's coordinate convention
      (``model.coordinate_convention``): where its cells and offsets are.

  Returns:
    The Figure.
  """
  crop = _crop_2d(depth_crop)
  size = crop.shape[0]
  offsets = np.asarray(offset_maps)[..., joint_index, :2]
  weights = np.asarray(voting_maps)[..., joint_index]
  h, w = weights.shape
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  cell_uv = np.stack([geometry.pixel_to_normalized(cols, w, convention),
                      geometry.pixel_to_normalized(rows, h, convention)],
                     axis=-1)
  votes_uv = cell_uv + offsets
  voted_uv = (np.sum(weights[..., None] * votes_uv, axis=(0, 1)) /
              np.sum(weights))

  start = uvz_to_crop_pixels(cell_uv, size, convention)
  delta = uvz_to_crop_pixels(votes_uv, size, convention) - start
  drawn = (rows % stride == 0) & (cols % stride == 0)
  if hand_only:
    pixel = np.clip(np.rint(start), 0, size - 1).astype(int)
    drawn &= crop[pixel[..., 1], pixel[..., 0]] < 1.0
  drawn &= weights >= min_relative_weight * weights.max()
  shown = np.flatnonzero(drawn.ravel())
  flat = weights.ravel()
  # Heaviest arrows last, so that they are drawn on top.
  shown = shown[np.argsort(flat[shown], kind="stable")]
  start, delta = start.reshape(-1, 2), delta.reshape(-1, 2)

  fig, ax = _figure_and_axes(ax, (5.5, 4.5))
  _show_crop(ax, crop)
  peak = max(float(flat.max()), np.finfo(np.float32).tiny)
  arrows = ax.quiver(
      start[shown, 0], start[shown, 1], delta[shown, 0], delta[shown, 1],
      np.maximum(flat[shown], peak * 1e-4), cmap="viridis",
      norm=mpl_colors.LogNorm(peak * 1e-4, peak),
      angles="xy", scale_units="xy", scale=1.0, width=0.006, zorder=2)
  fig.colorbar(arrows, ax=ax, label="voting weight (log scale)")
  voted = uvz_to_crop_pixels(voted_uv, size, convention)
  ax.scatter(voted[0], voted[1], marker="*", s=220, color=PRED_COLOR,
             edgecolors="white", linewidths=0.8, zorder=3,
             label="weighted vote")
  ax.set_xlim(-0.5, size - 0.5)
  ax.set_ylim(size - 0.5, -0.5)
  ax.legend(loc="lower right", fontsize="small")
  name = joint_name if joint_name is not None else f"joint {joint_index}"
  ax.set_title(f"Offsets to {name}")
  return fig


def _draw_skeleton_3d(ax, xyz, skeleton, color, label, linestyle="-"):
  # Plot axes (x, z, y): depth goes into the screen and y is vertical.
  for i, j in skeleton.bones:
    ax.plot(xyz[[i, j], 0], xyz[[i, j], 2], xyz[[i, j], 1], color=color,
            linestyle=linestyle, linewidth=1.5)
  ax.scatter(xyz[:, 0], xyz[:, 2], xyz[:, 1], color=color, s=15, label=label,
             depthshade=False)


def plot_skeleton_3d(joints_xyz, skeleton, gt_xyz=None, y_up=None, ax=None,
                     title=None):
  """Predicted (red) and true (green, dashed) skeletons in camera space.

  The view is from slightly above and beside the camera: x to the right,
  depth z into the screen, and the hand upright as in the depth image. The
  axes share one scale so the hand is not distorted.

  Args:
    joints_xyz: (J, 3) predicted joints in mm.
    skeleton: Skeleton or layout name, for the bones.
    gt_xyz: optional (J, 3) true joints in mm.
    y_up: whether y points up in these coordinates (NYU, whose camera has a
      negative fy); by default taken from the sign of fy of the camera of
      the skeleton's dataset, and False when there is none.
    ax: 3D axes to draw into; a new figure when None.
    title: optional axes title.

  Returns:
    The Figure.
  """
  skeleton = skeletons.get_skeleton(skeleton)
  if y_up is None:
    y_up = any(p.camera.fy < 0 for p in
               dataset_profiles.profiles_with_skeleton(skeleton.name))
  fig, ax = _figure_and_axes(ax, (5, 5), projection="3d")
  points = [np.asarray(joints_xyz, np.float64)]
  if gt_xyz is not None:
    points.append(np.asarray(gt_xyz, np.float64))
    _draw_skeleton_3d(ax, points[1], skeleton, GT_COLOR, "ground truth", "--")
  _draw_skeleton_3d(ax, points[0], skeleton, PRED_COLOR, "prediction")
  everything = np.concatenate(points)
  centre = (everything.max(axis=0) + everything.min(axis=0)) / 2
  half = max(float(np.ptp(everything, axis=0).max()) / 2, 1.0)
  ax.set_xlim(centre[0] - half, centre[0] + half)
  ax.set_ylim(centre[2] - half, centre[2] + half)
  ax.set_zlim(centre[1] - half, centre[1] + half)
  if not y_up:
    ax.invert_zaxis()
  ax.set_box_aspect((1, 1, 1))
  ax.view_init(elev=15, azim=-75)
  ax.set_xlabel("x (mm)")
  ax.set_ylabel("z (mm)")
  ax.set_zlabel("y (mm)")
  ax.legend(loc="upper right", fontsize="small")
  if title:
    ax.set_title(title)
  return fig


def plot_success_curves(results, curve="max_joint_error", ax=None,
                        title=None):
  """Success-frame curves of several methods, like the paper's Figure 4.

  Args:
    results: method results (see the module docstring).
    curve: "max_joint_error" (the paper's metric) or "mean_joint_error".
    ax: axes to draw into; a new figure when None.
    title: optional axes title.

  Returns:
    The Figure, one line per method.
  """
  if curve not in _CURVE_LABELS:
    raise ValueError(f"curve must be one of {sorted(_CURVE_LABELS)}, "
                     f"got {curve!r}")
  fig, ax = _figure_and_axes(ax, (6, 4.5))
  max_threshold = 0.0
  for i, result in enumerate(results):
    curves = result["success_curves"]
    ax.plot(curves["thresholds_mm"], 100.0 * np.asarray(curves[curve]),
            color=f"C{i}", linewidth=1.8,
            label=f"{result['name']} ({result['mean_error_mm']:.2f} mm)")
    max_threshold = max(max_threshold, max(curves["thresholds_mm"]))
  ax.set_xlim(0.0, max_threshold)
  ax.set_ylim(0.0, 100.0)
  ax.set_xlabel("Error threshold (mm)")
  ax.set_ylabel(_CURVE_LABELS[curve])
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right", title="method (mean error)")
  if title:
    ax.set_title(title)
  return fig


def plot_per_joint_errors(results, joint_names=None, ax=None, title=None):
  """Grouped bars: each joint's mean error per method, and the overall mean.

  Args:
    results: method results (see the module docstring).
    joint_names: joints in drawing order; those of the first result when None.
    ax: axes to draw into; a new figure when None.
    title: optional axes title.

  Returns:
    The Figure.
  """
  results = list(results)
  if joint_names is None:
    joint_names = list(results[0]["per_joint_error_mm"])
  labels = list(joint_names) + ["mean"]
  fig, ax = _figure_and_axes(ax, (max(6.0, 0.55 * len(labels) + 1), 4.5))
  positions = np.arange(len(labels))
  width = 0.8 / len(results)
  tallest = 0.0
  for i, result in enumerate(results):
    values = [result["per_joint_error_mm"][name] for name in joint_names]
    values.append(result["mean_error_mm"])
    x = positions - 0.4 + (i + 0.5) * width
    ax.bar(x, values, width=width, color=f"C{i}", label=result["name"])
    ax.text(x[-1], values[-1], f"{values[-1]:.2f}", ha="center",
            va="bottom", rotation=90, fontsize="small")
    tallest = max(tallest, max(values))
  # Headroom above the bars keeps the legend off them.
  ax.set_ylim(0.0, 1.3 * tallest)
  # A rule sets the overall mean apart from the joints.
  ax.axvline(len(joint_names) - 0.5, color="grey", linestyle=":")
  ax.set_xticks(positions, labels, rotation=60, ha="right",
                rotation_mode="anchor")
  ax.set_xlim(-0.6, len(labels) - 0.4)
  ax.set_ylabel("Mean 3D error (mm)")
  ax.grid(axis="y", alpha=0.3)
  ax.legend(loc="upper left", title="method")
  if title:
    ax.set_title(title)
  return fig


def plot_comparison(results, joint_names=None, title=None):
  """Success curves (max joint error) and per-joint errors side by side."""
  results = list(results)
  fig = new_figure((15, 5.5))
  curve_ax, joint_ax = fig.subplots(1, 2, width_ratios=(1, 1.6))
  plot_success_curves(results, ax=curve_ax,
                      title="Success frames (paper's Figure 4)")
  plot_per_joint_errors(results, joint_names, ax=joint_ax,
                        title="Mean error per joint")
  if title:
    fig.suptitle(title, fontsize="x-large")
  return fig


def plot_per_frame_errors(frame_errors, k=5, ax=None,
                          ylabel="Worst joint error (mm)"):
  """Error of every frame in test order, with the k worst frames marked.

  Args:
    frame_errors: (N,) one error per frame, e.g. ``metrics.max_joint_errors``.
    k: how many of the worst frames to mark and label with their index.
    ax: axes to draw into; a new figure when None.
    ylabel: what the errors are.

  Returns:
    The Figure.
  """
  frame_errors = np.asarray(frame_errors)
  worst = metrics.worst_frames(frame_errors, k)
  fig, ax = _figure_and_axes(ax, (8, 3.5))
  ax.plot(frame_errors, color="C0", linewidth=0.6)
  ax.scatter(worst, frame_errors[worst], color=PRED_COLOR, zorder=3,
             label=f"{len(worst)} worst frames")
  for index in worst:
    ax.annotate(str(index), (index, frame_errors[index]),
                textcoords="offset points", xytext=(3, 3), fontsize="small")
  ax.set_xlim(0, len(frame_errors) - 1)
  ax.set_ylim(bottom=0)
  ax.set_xlabel("Frame (test order)")
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  ax.legend(loc="upper right")
  return fig


def plot_worst_frames(depth_crops, joints_uvz, skeleton, frame_errors, k=6,
                      gt_uvz=None, ncols=3):
  """The crops of the k frames with the largest errors, with their skeletons.

  Args:
    depth_crops: (N, S, S) or (N, S, S, 1) normalized crops.
    joints_uvz: (N, J, 3) predicted normalized UVZ.
    skeleton: Skeleton or layout name.
    frame_errors: (N,) one error per frame in mm.
    k: how many frames.
    gt_uvz: optional (N, J, 3) true normalized UVZ.
    ncols: panels per row.

  Returns:
    The Figure, one panel per frame titled with its index and error.
  """
  worst = metrics.worst_frames(frame_errors, k)
  nrows = math.ceil(len(worst) / ncols)
  fig = new_figure((3.2 * ncols, 3.4 * nrows))
  axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
  for ax in axes[len(worst):]:
    fig.delaxes(ax)
  for ax, index in zip(axes, worst):
    plot_crop_with_joints(
        depth_crops[index], joints_uvz[index], skeleton,
        gt_uvz=None if gt_uvz is None else gt_uvz[index], ax=ax,
        title=f"frame {index}: {frame_errors[index]:.1f} mm")
  return fig


def plot_frame_overview(depth_crop, joints_uvz, joints_xyz, skeleton,
                        gt_uvz=None, gt_xyz=None, title=None):
  """One frame in three panels: the crop, its 2D and its 3D skeletons.

  Args:
    depth_crop: (S, S) or (S, S, 1) normalized depth crop, the network's
      input, drawn with a colour bar of normalized depth.
    joints_uvz: (J, 3) predicted normalized UVZ, drawn on the crop.
    joints_xyz: (J, 3) predicted joints in mm, drawn in 3D.
    skeleton: Skeleton or layout name.
    gt_uvz: optional (J, 3) true normalized UVZ.
    gt_xyz: optional (J, 3) true joints in mm.
    title: optional figure title.

  Returns:
    The Figure: the crop, the 2D skeletons, the 3D skeletons and the colour
    bar, in this order in ``fig.axes``.
  """
  crop = _crop_2d(depth_crop)
  fig = new_figure((14, 4.6))
  crop_ax = fig.add_subplot(1, 3, 1)
  _show_crop(crop_ax, crop)
  crop_ax.set_title("Depth crop (network input)")
  plot_crop_with_joints(crop, joints_uvz, skeleton, gt_uvz=gt_uvz,
                        ax=fig.add_subplot(1, 3, 2), title="2D on the crop")
  plot_skeleton_3d(joints_xyz, skeleton, gt_xyz=gt_xyz,
                   ax=fig.add_subplot(1, 3, 3, projection="3d"),
                   title="3D in camera space")
  fig.colorbar(crop_ax.images[0], ax=crop_ax, shrink=0.8,
               label="normalized depth (background 1)")
  if title:
    fig.suptitle(title)
  return fig
