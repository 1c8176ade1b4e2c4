"""Synthetic depth hands rendered from an articulated hand model.

The real datasets (NYU, ICVL, MSRA) cannot be downloaded everywhere, so the
package ships a procedural one: random adult right hands (``hand_model``) in
natural poses (``poses``), rendered to depth in mm by exact ray–capsule
intersection with sensor noise (``renderer``, ``scene``), written in the ICVL
on-disk format with exact joint labels (``writer``). ``contact_sheet`` draws
frames with their skeletons to look at.

  python -m jgr_p2o_tf.synthetic --out=DIR --num_frames=N --seed=S \\
      --layout={icvl,nyu,msra,synthetic}
"""

from jgr_p2o_tf.synthetic.scene import FrameOptions
from jgr_p2o_tf.synthetic.scene import render_frame
from jgr_p2o_tf.synthetic.writer import generate

__all__ = ["FrameOptions", "generate", "render_frame"]
