"""The inspection notebook runs headlessly, draws its figures, is stored clean.

The notebook is executed in a kernel of this Python with environment
variables that make it quick: first as it runs by default, training a model
(for two steps on 64 synthetic frames) and rendering 16 test crops; then on
a SavedModel that finds the hand itself (a small pose network with a tiny
centre refiner) and prepared test crops, whose raw frames its last section
runs it on. Exported ONNX graphs on OpenVINO, through the same
``inspection.load_model``, are tested in test_onnx.py.
"""

import os

import nbformat
from nbclient import NotebookClient
import numpy as np
import pytest

from jgr_p2o_tf import inspection

NOTEBOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "notebooks")
NOTEBOOK = os.path.join(NOTEBOOK_DIR, "inspect_voting_maps.ipynb")
NUM_FRAMES = 16
# Crop, 2D and 3D skeletons; voting maps (one stack); offset field; errors
# per joint; errors per frame; worst frames; voting maps of the worst one.
NUM_FIGURES = 7
# What the last section prints for a model that does not find the hand.
NEEDS_A_CENTRE = "--centre_refiner_dir=..."


def _execute(**variables):
  """The notebook executed with these JGR_NOTEBOOK_* variables (and no other).

  A failing cell raises CellExecutionError, which fails the test.
  """
  env = {k: v for k, v in os.environ.items()
         if not k.startswith("JGR_NOTEBOOK_")}
  env.update({f"JGR_NOTEBOOK_{k}": str(v) for k, v in variables.items()})
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  NotebookClient(notebook, kernel_name="python3", timeout=300,
                 resources={"metadata": {"path": NOTEBOOK_DIR}}).execute(
                     env=env)
  return notebook


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
  """The notebook executed as by default, and its work folder."""
  work_dir = str(tmp_path_factory.mktemp("notebook"))
  notebook = _execute(WORK_DIR=work_dir, TRAIN_STEPS=2, TRAIN_FRAMES=64,
                      FRAMES=NUM_FRAMES, JOINT="thumb_tip")
  return notebook, work_dir


def _outputs(notebook, kind):
  return [output for cell in notebook.cells if cell.cell_type == "code"
          for output in cell.outputs if kind(output)]


def _figures(notebook):
  return _outputs(notebook, lambda o: "image/png" in o.get("data", {}))


def _text(notebook):
  return "".join(o.get("text", "") for o in _outputs(
      notebook, lambda o: o.output_type == "stream"))


def test_notebook_trains_a_model_and_draws_its_figures(executed):
  notebook, _ = executed
  assert len(_figures(notebook)) == NUM_FIGURES
  text = _text(notebook)
  assert "Quick model trained" in text
  assert f"{NUM_FRAMES} crops of" in text
  assert NEEDS_A_CENTRE in text
  # Every figure came as an image, none as its bare repr.
  assert not _outputs(notebook, lambda o: "image/png" not in o.get(
      "data", {}) and "<Figure size" in o.get("data", {}).get("text/plain", ""))


def test_notebook_on_an_export_that_finds_the_hand(
    refiner_export, synthetic_records, tmp_path):
  export_dir, _ = refiner_export
  notebook = _execute(
      MODEL=export_dir, RUNTIME="tensorflow",
      DATA_DIR=os.path.join(synthetic_records, "test"), FRAMES=8,
      FRAME_INDEX=2, FULL_FRAMES=3, WORK_DIR=tmp_path / "unused")
  # An exported model returns no offset maps: no offset field; but one more
  # figure, a whole frame with the hand it found.
  assert len(_figures(notebook)) == NUM_FIGURES
  text = _text(notebook)
  assert "returns no offset maps" in text
  assert "Quick model trained" not in text
  assert "8 crops of" in text and "looking into crop 2" in text
  assert "hand found in 3 of 3 frames" in text
  assert NEEDS_A_CENTRE not in text
  assert not (tmp_path / "unused").exists()


def test_committed_notebook_has_no_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(notebook)
  code = [cell for cell in notebook.cells if cell.cell_type == "code"]
  assert code
  for cell in code:
    assert cell.outputs == [], cell.source[:80]
    assert cell.execution_count is None, cell.source[:80]


def test_quick_model_loads_from_its_run(executed):
  _, work_dir = executed
  model_dir = os.path.join(work_dir, "model")
  model, skeleton = inspection.load_model(model_dir)
  same, _ = inspection.load_model(os.path.join(model_dir, "last.keras"))
  assert skeleton == "icvl"
  frames = inspection.run_on_records(
      model, os.path.join(work_dir, "records", "test"), num_frames=5,
      batch_size=2)
  assert frames["depth"].shape == (5, 96, 96, 1)
  assert frames["pred_xyz"].shape == frames["gt_xyz"].shape == (5, 16, 3)
  stacks = inspection.stack_outputs(model, frames["depth"][1])
  assert [sorted(s) for s in stacks] == [
      ["joints_uvz", "offset_maps", "voting_maps"]]
  np.testing.assert_allclose(stacks[0]["joints_uvz"], frames["pred_uvz"][1],
                             atol=1e-5)
  np.testing.assert_allclose(
      inspection.stack_outputs(same, frames["depth"][1])[0]["joints_uvz"],
      stacks[0]["joints_uvz"], atol=1e-6)
  np.testing.assert_allclose(stacks[0]["voting_maps"].sum(axis=(0, 1)), 1.0,
                             rtol=1e-4)


def test_joint_index_takes_names_and_indices():
  assert inspection.joint_index("icvl", "index_tip") == 6
  assert inspection.joint_index("icvl", "6") == 6
  assert inspection.joint_index("icvl", 15) == 15
  with pytest.raises(ValueError, match="no joint 'wrist'"):
    inspection.joint_index("icvl", "wrist")
  with pytest.raises(ValueError, match="0..15"):
    inspection.joint_index("icvl", 16)


def test_load_model_refuses_what_is_not_a_model(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a .keras file"):
    inspection.load_model(tmp_path / "missing.keras")
