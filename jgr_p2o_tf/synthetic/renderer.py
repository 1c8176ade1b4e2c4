"""Depth rendering by exact ray intersection, and depth-sensor effects.

Rays start at the camera centre; the ray of pixel (u, v) has direction
``((u - cx)/fx, (v - cy)/fy, 1)``, so a hit at parameter t has depth z = t and
the depth image is the smallest t over all primitives. A capsule is a finite
cylinder plus a sphere at each end, each solved in closed form; the palm slab
is a convex prism, cut by its bounding planes. Only the pixels in each
primitive's projected bounding box are traced, all capsules of a frame in one
vectorized float32 pass.

The camera must be outside every primitive, in front of it: z − radius > 0.
"""

import numpy as np

# Largest depth the background plane is drawn to; beyond it the sensor sees
# nothing.
MAX_DEPTH_MM = 3000.0
# A silhouette edge: 4-neighbours further apart in depth than this.
EDGE_STEP_MM = 10.0


def ray_directions(camera, u, v):
  """(x, y) of the ray directions (x, y, 1) through pixels (u, v), float32.

  The direction is ``geometry.uvd_to_xyz`` of (u, v, 1), written out so as to
  stay in float32.
  """
  x = ((u - camera.cx) / camera.fx).astype(np.float32)
  y = ((v - camera.cy) / camera.fy).astype(np.float32)
  return x, y


def _capsule_terms(start, end, radius):
  """Per-capsule terms of the ray test, (16, K) float32.

  Rows: start a (3), end b (3), unit axis w (3), a × w (3), a·w, length,
  radius, radius².
  """
  start = np.atleast_2d(np.asarray(start, np.float64))
  end = np.atleast_2d(np.asarray(end, np.float64))
  radius = np.broadcast_to(np.asarray(radius, np.float64), start.shape[:1])
  axis = end - start
  length = np.linalg.norm(axis, axis=1)
  # A capsule shrunk to a sphere gets any axis: only its caps can be hit.
  w = np.where(length[:, None] > 0, axis, [0.0, 0.0, 1.0])
  w /= np.linalg.norm(w, axis=1, keepdims=True)
  terms = np.concatenate([start.T, end.T, w.T, np.cross(start, w).T,
                          [np.sum(start * w, axis=1), length, radius,
                           radius * radius]])
  return terms.astype(np.float32)


def ray_capsule_depth(x, y, start, end, radius, owner=None):
  """Depth of the first hit of rays (x, y, 1) on capsules; inf for a miss.

  The ray is tested against the infinite cylinder around the axis first: a
  ray missing it misses the capsule; a hit between the end planes is the
  answer; otherwise the ray can only enter through the cap sphere on that
  side, which is tested next.

  Args:
    x, y: (N,) ray directions.
    start, end: (K, 3) or (3,) capsule axis end points (camera frame, mm).
    radius: (K,) or scalar.
    owner: (N,) index of the capsule each ray is tested against; None pairs
      ray i with capsule i (or every ray with the one capsule).

  Returns:
    (N,) float32 depth in mm.
  """
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.float32)
  terms = _capsule_terms(start, end, radius)
  if owner is not None:
    terms = np.take(terms, owner, axis=1)
  (ax, ay, az, bx, by, bz, wx, wy, wz, mx, my, mz, a_w, length, _,
   radius2) = terms
  norm2 = x * x + y * y + 1.0
  d_w = x * wx + y * wy + wz
  across2 = norm2 - d_w * d_w
  # Cylinder: with d⊥ and a⊥ the parts of the ray direction and of the start
  # across the axis, |t d⊥ − a⊥|² = r²; its discriminant is written as
  # |d⊥|² r² − ((d × a)·w)², free of the cancellation of b² − ac, and
  # (d × a)·w = d·(a × w).
  g = x * mx + y * my + mz
  disc = across2 * radius2 - g * g
  parallel = across2 < 1e-10
  t = (x * ax + y * ay + az - d_w * a_w -
       np.sqrt(np.maximum(disc, 0.0))) / np.where(parallel, 1.0, across2)
  s = t * d_w - a_w  # Where along the axis the ray enters the cylinder.
  # A ray along the axis meets the nearer cap first.
  s = np.where(parallel, np.where(d_w > 0, -np.inf, np.inf), s)
  on_side = (s >= 0.0) & (s <= length)
  before = s < 0.0
  cx = np.where(before, ax, bx)
  cy = np.where(before, ay, by)
  cz = np.where(before, az, bz)
  # Sphere: the discriminant |d|² r² − |d × c|², for the same reason.
  cross2 = (y * cz - cy)**2 + (cx - x * cz)**2 + (x * cy - y * cx)**2
  disc_cap = norm2 * radius2 - cross2
  t_cap = (x * cx + y * cy + cz - np.sqrt(np.maximum(disc_cap, 0.0))) / norm2
  t = np.where(on_side, t, np.where(disc_cap >= 0.0, t_cap, np.inf))
  return np.where((disc >= 0.0) | parallel, t, np.inf)


def ray_slab_depth(x, y, polygon, radius):
  """Depth of the first hit of rays (x, y, 1) on a thickened polygon's core.

  The core is the prism of the planar convex ``polygon`` extruded ±radius
  along its normal; with capsules of ``radius`` along its edges it makes the
  set of points within ``radius`` of the polygon.

  Args:
    x, y: (N,) ray directions.
    polygon: (P, 3) convex planar polygon, vertices in order.
    radius: half thickness.

  Returns:
    (N,) depth in mm, inf for a miss.
  """
  polygon = np.asarray(polygon, np.float64)
  centroid = polygon.mean(axis=0)
  edges = np.roll(polygon, -1, axis=0) - polygon
  normal = np.cross(edges[0], edges[1])
  normal /= np.linalg.norm(normal)
  outward = np.cross(edges, normal)
  outward /= np.linalg.norm(outward, axis=1, keepdims=True)
  # Point the edge normals away from the centroid whatever the winding.
  outward *= np.where(np.sum(outward * (polygon - centroid), axis=1) < 0,
                      -1.0, 1.0)[:, None]
  # Half-spaces n·p ≤ h bounding the prism.
  normals = np.concatenate([outward, normal[None], -normal[None]])
  offsets = np.concatenate([np.sum(outward * polygon, axis=1),
                            [normal @ centroid + radius,
                             -normal @ centroid + radius]])
  normals = normals.astype(np.float32)
  offsets = offsets.astype(np.float32)[:, None]
  n_d = (normals[:, 0:1] * x[None] + normals[:, 1:2] * y[None] +
         normals[:, 2:3])
  with np.errstate(divide="ignore", invalid="ignore"):
    bound = offsets / n_d
  t_in = np.max(np.where(n_d < 0, bound, -np.inf), axis=0)
  t_out = np.min(np.where(n_d > 0, bound, np.inf), axis=0)
  # A ray parallel to a face plane misses unless it starts inside it.
  parallel_outside = np.any((n_d == 0) & (offsets < 0), axis=0)
  hit = (t_in <= t_out) & (t_in > 0) & ~parallel_outside
  return np.where(hit, t_in, np.inf)


def _projected_boxes(camera, centres, radii):
  """Pixel bounding boxes (u0, u1, v0, v1), inclusive, of spheres' images.

  Conservative: the projection of the box [c − r, c + r]; spheres must lie in
  front of the camera.
  """
  boxes = []
  for axis, focal, principal in ((0, camera.fx, camera.cx),
                                 (1, camera.fy, camera.cy)):
    lateral = centres[:, axis, None] + np.array([-1.0, 1.0]) * radii[:, None]
    depth = centres[:, 2, None] + np.array([-1.0, 1.0]) * radii[:, None]
    image = focal * (lateral[:, :, None] / depth[:, None, :]) + principal
    image = image.reshape(len(centres), 4)
    boxes += [np.floor(image.min(axis=1)), np.ceil(image.max(axis=1))]
  return np.stack(boxes, axis=1)


def _clip_boxes(boxes, camera):
  """Boxes clipped to the image, as int; one wholly outside becomes empty."""
  last = np.array([camera.width - 1, camera.width - 1, camera.height - 1,
                   camera.height - 1])
  clipped = np.clip(boxes, 0, last).astype(np.int64)
  outside = ((boxes[:, 1] < 0) | (boxes[:, 0] > last[0]) |
             (boxes[:, 3] < 0) | (boxes[:, 2] > last[2]))
  clipped[outside, 1] = clipped[outside, 0] - 1  # u1 < u0: no pixels.
  return clipped


def _box_pixels(boxes):
  """Pixels of inclusive boxes: (box index, u, v), each (N,) int64."""
  widths = np.maximum(boxes[:, 1] - boxes[:, 0] + 1, 0)
  heights = np.maximum(boxes[:, 3] - boxes[:, 2] + 1, 0)
  counts = widths * heights
  owner = np.repeat(np.arange(len(boxes)), counts)
  local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts,
                                              counts)
  u = boxes[owner, 0] + local % widths[owner]
  v = boxes[owner, 2] + local // widths[owner]
  return owner, u, v


def render_depth(camera, body, background=None):
  """Depth image (H, W) float32 in mm of a Body; 0 where no ray hits.

  Args:
    camera: geometry.Camera with positive fx, fy (the physical camera).
    body: hand_model.Body in the camera frame.
    background: optional (normal (3,), offset) plane n·p = offset behind the
      hand, with n·d > 0 on rays that meet it.
  """
  size = camera.height * camera.width
  if background is None:
    depth = np.full(size, np.inf, np.float32)
  else:
    normal, offset = background
    v, u = np.divmod(np.arange(size), camera.width)
    x, y = ray_directions(camera, u, v)
    n_d = normal[0] * x + normal[1] * y + normal[2]
    with np.errstate(divide="ignore"):
      t = np.float32(offset) / n_d
    depth = np.where((n_d > 0) & (t <= MAX_DEPTH_MM), t, np.inf).astype(
        np.float32)

  radii = body.capsule_radius
  # A capsule's image is the convex hull of its end spheres' images.
  start = _projected_boxes(camera, body.capsule_start, radii)
  end = _projected_boxes(camera, body.capsule_end, radii)
  low, high = np.minimum(start, end), np.maximum(start, end)
  boxes = np.stack([low[:, 0], high[:, 1], low[:, 2], high[:, 3]], axis=1)
  owner, u, v = _box_pixels(_clip_boxes(boxes, camera))
  x, y = ray_directions(camera, u, v)
  t = ray_capsule_depth(x, y, body.capsule_start, body.capsule_end, radii,
                        owner)
  hit = np.isfinite(t)
  np.minimum.at(depth, (v * camera.width + u)[hit], t[hit])

  slab_box = _projected_boxes(
      camera, body.palm_polygon,
      np.full(len(body.palm_polygon), body.palm_radius))
  slab_box = np.array([[slab_box[:, 0].min(), slab_box[:, 1].max(),
                        slab_box[:, 2].min(), slab_box[:, 3].max()]])
  _, u, v = _box_pixels(_clip_boxes(slab_box, camera))
  x, y = ray_directions(camera, u, v)
  index = v * camera.width + u
  depth[index] = np.minimum(depth[index],
                            ray_slab_depth(x, y, body.palm_polygon,
                                           body.palm_radius))
  depth[~np.isfinite(depth)] = 0.0
  return depth.reshape(camera.height, camera.width)


def silhouette_edges(depth):
  """Pixels with depth whose 4-neighbour has none or differs > EDGE_STEP_MM."""
  # The image border is no silhouette: replicate it.
  padded = np.pad(depth, 1, mode="edge")
  valid = depth > 0
  edge = np.zeros_like(valid)
  for dv, du in ((0, 1), (2, 1), (1, 0), (1, 2)):
    neighbour = padded[dv:dv + depth.shape[0], du:du + depth.shape[1]]
    edge |= (neighbour <= 0) | (np.abs(neighbour - depth) > EDGE_STEP_MM)
  return edge & valid


def apply_sensor_effects(depth, rng, noise_mm=0.0, edge_dropout=0.0):
  """Noise and missing pixels of a depth camera, then whole millimetres.

  Args:
    depth: (H, W) float depth in mm, 0 for none.
    rng: numpy Generator.
    noise_mm: standard deviation of Gaussian depth noise.
    edge_dropout: chance that a silhouette-edge pixel reads no depth, as
      structured-light and time-of-flight sensors lose them.

  Returns:
    (H, W) uint16 depth in mm, 0 for none.
  """
  out = np.zeros(depth.shape, np.uint16)
  rows = np.flatnonzero((depth > 0).any(axis=1))
  columns = np.flatnonzero((depth > 0).any(axis=0))
  if not rows.size:
    return out
  # Work in the box around the pixels with depth (the hand covers a tenth of
  # the image), one pixel wider so that the whole silhouette is inside it.
  box = (slice(max(rows[0] - 1, 0), rows[-1] + 2),
         slice(max(columns[0] - 1, 0), columns[-1] + 2))
  depth = depth[box]
  result = np.rint(depth)
  if edge_dropout > 0:
    edges = np.flatnonzero(silhouette_edges(depth))
    result.flat[edges[rng.random(len(edges)) < edge_dropout]] = 0.0
  if noise_mm > 0:
    valid = np.flatnonzero(result)
    result.flat[valid] = np.rint(depth.flat[valid] + rng.normal(
        0.0, noise_mm, len(valid)))
  out[box] = np.clip(result, 0, 65535)
  return out
