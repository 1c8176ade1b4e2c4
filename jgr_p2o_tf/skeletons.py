"""Hand skeletons: joint names, bone lists and the joint layouts of each dataset.

Every other module asks this one for joint counts, names and bones, so a new
dataset layout is added here and nowhere else.

Layouts:
  * ``nyu``: the 14 evaluation joints of NYU (indices ``NYU_EVAL_JOINTS`` of the
    36 annotated ones), in the order of the community evaluation toolkit.
  * ``icvl``: the 16 ICVL joints.
  * ``msra``: the 21 MSRA 2015 joints.
  * ``synthetic``: the 21 joints of the articulated hand of
    ``jgr_p2o_tf.synthetic`` (wrist, then thumb CMC/MCP/IP/tip, then MCP, PIP,
    DIP and tip of index, middle, ring and pinky).

``synthetic_to_layout(name)`` gives the (J_layout, 21) matrix that maps the 21
synthetic joints to a dataset layout; each row is an affine combination
(weights sum to 1) so it commutes with any rigid motion or scaling of the hand.
"""

import dataclasses

import numpy as np

# The digits, thumb first; a joint on none of them is on the palm (wrist,
# palm centre).
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
PALM = "palm"

# The colour (RGB, 0–255) every figure draws a finger's bones and joints in,
# the same in each dataset's layout: figures, TensorBoard images, the
# synthetic contact sheet.
FINGER_COLORS = {"thumb": (255, 140, 0), "index": (230, 30, 40),
                 "middle": (30, 170, 60), "ring": (30, 110, 255),
                 "pinky": (190, 50, 220), PALM: (240, 215, 30)}


def finger_of(joint_name):
  """The finger a joint is on (its name's prefix), or PALM."""
  return next((f for f in FINGERS if joint_name.startswith(f + "_")), PALM)


@dataclasses.dataclass(frozen=True)
class Skeleton:
  """A hand layout: ``joint_names`` in order and ``bones`` as index pairs."""
  name: str
  joint_names: tuple
  bones: tuple

  @property
  def num_joints(self):
    return len(self.joint_names)

  @property
  def joint_fingers(self):
    """The finger (or PALM) of each joint."""
    return tuple(finger_of(name) for name in self.joint_names)

  @property
  def bone_fingers(self):
    """The finger of each bone: its end's on a finger, else PALM."""
    fingers = self.joint_fingers
    return tuple(fingers[j] if fingers[j] != PALM else fingers[i]
                 for i, j in self.bones)

  def adjacency(self):
    """Symmetric 0/1 adjacency matrix A (J, J) of the bone graph, no self loops."""
    a = np.zeros((self.num_joints, self.num_joints), np.float32)
    for i, j in self.bones:
      a[i, j] = a[j, i] = 1.0
    return a

  def normalized_adjacency(self):
    """Kipf & Welling normalisation D^-1/2 (A + I) D^-1/2 (paper Sec. 3.2)."""
    a_tilde = self.adjacency() + np.eye(self.num_joints, dtype=np.float32)
    d_inv_sqrt = 1.0 / np.sqrt(a_tilde.sum(axis=1))
    return (a_tilde * d_inv_sqrt[:, None] * d_inv_sqrt[None, :]).astype(np.float32)


def _chain_bones(root, chains):
  bones = []
  for chain in chains:
    previous = root
    for joint in chain:
      bones.append((previous, joint))
      previous = joint
  return tuple(bones)


# Indices of the 14 NYU evaluation joints among the 36 annotated ones.
NYU_EVAL_JOINTS = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)

NYU = Skeleton(
    name="nyu",
    joint_names=("pinky_tip", "pinky_mid", "ring_tip", "ring_mid",
                 "middle_tip", "middle_mid", "index_tip", "index_mid",
                 "thumb_tip", "thumb_mid", "thumb_root",
                 "wrist_radial", "wrist_ulnar", "palm"),
    # Palm-centred tree used by DeepPrior++ and Pose-REN for NYU-14.
    bones=((0, 1), (1, 13), (2, 3), (3, 13), (4, 5), (5, 13), (6, 7), (7, 13),
           (8, 9), (9, 10), (10, 13), (11, 13), (12, 13)),
)

ICVL = Skeleton(
    name="icvl",
    joint_names=("palm",
                 "thumb_root", "thumb_mid", "thumb_tip",
                 "index_root", "index_mid", "index_tip",
                 "middle_root", "middle_mid", "middle_tip",
                 "ring_root", "ring_mid", "ring_tip",
                 "pinky_root", "pinky_mid", "pinky_tip"),
    bones=_chain_bones(0, [(1, 2, 3), (4, 5, 6), (7, 8, 9), (10, 11, 12),
                           (13, 14, 15)]),
)

_MSRA_FINGERS = ("index", "middle", "ring", "pinky", "thumb")
MSRA = Skeleton(
    name="msra",
    joint_names=("wrist",) + tuple(
        f"{finger}_{part}" for finger in _MSRA_FINGERS
        for part in ("mcp", "pip", "dip", "tip")),
    bones=_chain_bones(0, [(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12),
                           (13, 14, 15, 16), (17, 18, 19, 20)]),
)

SYNTHETIC = Skeleton(
    name="synthetic",
    joint_names=("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip") +
    tuple(f"{finger}_{part}" for finger in ("index", "middle", "ring", "pinky")
          for part in ("mcp", "pip", "dip", "tip")),
    bones=_chain_bones(0, [(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12),
                           (13, 14, 15, 16), (17, 18, 19, 20)]),
)

SKELETONS = {s.name: s for s in (NYU, ICVL, MSRA, SYNTHETIC)}


def get_skeleton(name_or_skeleton):
  """Returns the Skeleton for a dataset name, or the Skeleton passed in."""
  if isinstance(name_or_skeleton, Skeleton):
    return name_or_skeleton
  try:
    return SKELETONS[name_or_skeleton]
  except KeyError:
    raise ValueError(f"Unknown skeleton {name_or_skeleton!r}; "
                     f"expected one of {sorted(SKELETONS)}.") from None


def _synthetic_index(name):
  return SYNTHETIC.joint_names.index(name)


def _layout_matrix(rows):
  """Rows given as {synthetic_joint_name: weight} → (len(rows), 21) matrix."""
  m = np.zeros((len(rows), SYNTHETIC.num_joints), np.float32)
  for r, weights in enumerate(rows):
    for joint, w in weights.items():
      m[r, _synthetic_index(joint)] = w
    assert abs(m[r].sum() - 1.0) < 1e-6, rows[r]
  return m


def synthetic_to_layout(name):
  """(J, 21) matrix mapping synthetic-hand joints to layout ``name``'s joints."""
  name = get_skeleton(name).name
  one = lambda j: {j: 1.0}
  if name == "synthetic":
    rows = [one(j) for j in SYNTHETIC.joint_names]
  elif name == "msra":
    rows = [one("wrist")] + [
        one(f"{f}_{p}") for f in ("index", "middle", "ring", "pinky")
        for p in ("mcp", "pip", "dip", "tip")] + [
            one(f"thumb_{p}") for p in ("cmc", "mcp", "ip", "tip")]
  elif name == "icvl":
    rows = [one("wrist"), one("thumb_mcp"), one("thumb_ip"), one("thumb_tip")]
    rows += [one(f"{f}_{p}") for f in ("index", "middle", "ring", "pinky")
             for p in ("mcp", "pip", "tip")]
  elif name == "nyu":
    rows = []
    for f in ("pinky", "ring", "middle", "index"):
      rows += [one(f"{f}_tip"), one(f"{f}_pip")]
    rows += [one("thumb_tip"), one("thumb_ip"), one("thumb_mcp")]
    # NYU's two wrist points lie either side of the wrist along the line of
    # the knuckles; its palm point lies between wrist and middle knuckle.
    rows += [{"wrist": 1.0, "index_mcp": 0.35, "pinky_mcp": -0.35},
             {"wrist": 1.0, "index_mcp": -0.35, "pinky_mcp": 0.35},
             {"wrist": 0.5, "middle_mcp": 0.5}]
  else:
    raise AssertionError(name)
  return _layout_matrix(rows)
