"""Renders a synthetic depth-hand dataset in the ICVL format.

  python -m jgr_p2o_tf.synthetic --out=data/synthetic/train \\
      --num_frames=10000 --seed=0 --layout=icvl [--camera=nyu] \\
      [--noise_mm=1] [--edge_dropout=0.3] [--background_plane] [--workers=2]
  python -m jgr_p2o_tf.synthetic \\
      --contact_sheet=docs/synthetic_contact_sheet.png
"""

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf.synthetic import contact_sheet
from jgr_p2o_tf.synthetic import scene
from jgr_p2o_tf.synthetic import writer

_OUT = flags.DEFINE_string("out", None, "Folder to write the frames to.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 1000, "Frames to render.")
_SEED = flags.DEFINE_integer("seed", 0, "Dataset seed.")
_LAYOUT = flags.DEFINE_enum("layout", "icvl", list(writer.LAYOUTS),
                            "Joint layout of the labels.")
_CAMERA = flags.DEFINE_enum("camera", "icvl", list(writer.CAMERAS),
                            "Camera: icvl 320×240 or nyu 640×480.")
_NOISE_MM = flags.DEFINE_float("noise_mm", 1.0,
                               "Standard deviation of the depth noise, mm.")
_EDGE_DROPOUT = flags.DEFINE_float(
    "edge_dropout", 0.3, "Chance a silhouette-edge pixel has no depth.")
_BACKGROUND_PLANE = flags.DEFINE_boolean(
    "background_plane", False, "Put a plane behind each hand.")
_WORKERS = flags.DEFINE_integer("workers", 2, "Rendering processes.")
_CONTACT_SHEET = flags.DEFINE_string(
    "contact_sheet", None,
    "Also (or only, without --out) write a PNG of the first 16 frames of the "
    "seed with their skeletons.")


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  if _OUT.value is None and _CONTACT_SHEET.value is None:
    raise ValueError("give --out (a dataset) or --contact_sheet (a PNG)")
  if _OUT.value is not None:
    labels = writer.generate(
        _OUT.value, _NUM_FRAMES.value, _SEED.value, layout=_LAYOUT.value,
        camera=_CAMERA.value, noise_mm=_NOISE_MM.value,
        edge_dropout=_EDGE_DROPOUT.value,
        background_plane=_BACKGROUND_PLANE.value, workers=_WORKERS.value)
    print(f"wrote {_NUM_FRAMES.value} frames, labels in {labels}")
  if _CONTACT_SHEET.value is not None:
    options = scene.FrameOptions(
        camera=dataset_profiles.get_profile(_CAMERA.value).camera,
        layout=_LAYOUT.value,
        noise_mm=_NOISE_MM.value, edge_dropout=_EDGE_DROPOUT.value,
        background_plane=_BACKGROUND_PLANE.value)
    path = contact_sheet.make_contact_sheet(_CONTACT_SHEET.value, _SEED.value,
                                            options)
    print(f"wrote {path}")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
