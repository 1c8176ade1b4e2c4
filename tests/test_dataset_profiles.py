"""The dataset registry: what each profile holds, how names are looked up."""

import pytest

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.datasets import frame


@pytest.mark.parametrize("profile", dataset_profiles.PROFILES.values(),
                         ids=dataset_profiles.NAMES)
def test_profiles_are_complete(profile):
  assert dataset_profiles.get_profile(profile.name) is profile
  assert profile.skeleton in skeletons.SKELETONS
  assert issubclass(profile.reader, frame.Reader)
  assert profile.cube_mm > 0 and profile.epochs > 0
  assert profile.camera.width > 0 and profile.camera.height > 0
  if profile.v2v_axis_signs is not None:
    assert sorted(map(abs, profile.v2v_axis_signs)) == [1.0, 1.0, 1.0]


def test_the_papers_settings():
  by_name = dataset_profiles.PROFILES
  assert {n: p.cube_mm for n, p in by_name.items()} == {
      "nyu": 300.0, "icvl": 250.0, "msra": 200.0, "synthetic": 250.0}
  assert {n: p.epochs for n, p in by_name.items()} == {
      "nyu": 58, "icvl": 8, "msra": 58, "synthetic": 10}
  assert by_name["msra"].subjects == tuple(f"P{i}" for i in range(9))
  assert not by_name["nyu"].subjects and not by_name["icvl"].subjects


def test_unknown_names_are_refused_with_the_known_ones():
  with pytest.raises(ValueError, match=r"Unknown dataset 'hands2017'; "
                     r"expected one of \['nyu', 'icvl', 'msra', 'synthetic'\]"):
    dataset_profiles.get_profile("hands2017")
