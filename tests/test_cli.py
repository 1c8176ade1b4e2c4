"""The commands' shared conventions (jgr_p2o_tf.cli)."""

import collections

import pytest

from jgr_p2o_tf import cli

Flag = collections.namedtuple("Flag", "name value")


def test_numbers_of_a_list_flag():
  assert cli.numbers(Flag("cube_mm", ["250"]), (1, 3), positive=True) == [250.0]
  assert cli.numbers(Flag("camera", ["1", "2", "3.5", "4"]), (4, 6)) == [
      1.0, 2.0, 3.5, 4.0]
  assert cli.numbers(Flag("batch_sizes", ["1", "32"]), kind=int,
                     positive=True) == [1, 32]


@pytest.mark.parametrize("flag, counts, kind, positive, message", [
    (Flag("cube_mm", ["250", "0"]), (1, 3), float, True,
     "--cube_mm=250,0 must be 1 or 3 positive numbers"),
    (Flag("centre", ["1", "2"]), (3,), float, False,
     "--centre=1,2 must be 3 numbers"),
    (Flag("centre", ["1", "x", "3"]), (3,), float, False,
     "--centre=1,x,3 must be 3 numbers"),
    (Flag("centre", ["1", "nan", "3"]), (3,), float, False,
     "--centre=1,nan,3 must be 3 numbers"),
    (Flag("batch_sizes", ["1", "2.5"]), None, int, True,
     "--batch_sizes=1,2.5 must be positive integers"),
    (Flag("batch_sizes", []), None, int, True,
     "--batch_sizes= must be positive integers"),
])
def test_numbers_name_the_flag_and_what_it_takes(flag, counts, kind, positive,
                                                 message):
  with pytest.raises(ValueError) as error:
    cli.numbers(flag, counts, kind=kind, positive=positive)
  assert str(error.value) == message
