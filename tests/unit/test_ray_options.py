"""The Ray launcher's placement strategy option: Ray's four strategies, PACK by default,
anything else refused before any work with the valid ones listed."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from suite.common.errors import SpecError
from suite.launchers.options import add_launcher_arguments, check_choices, option
from suite.launchers.ray_tune import PLACEMENT_STRATEGIES, RayTuneOptions


def test_pack_is_the_default_and_every_ray_strategy_is_accepted():
    assert RayTuneOptions().placement_strategy == "PACK"
    for strategy in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
        assert RayTuneOptions(placement_strategy=strategy).placement_strategy == strategy


def test_unknown_strategy_names_the_field_and_lists_the_valid_ones():
    with pytest.raises(SpecError) as err:
        RayTuneOptions(placement_strategy="spread_out")
    message = str(err.value)
    assert "placement_strategy" in message and "'spread_out'" in message
    assert all(name in message for name in PLACEMENT_STRATEGIES)


def test_the_flag_is_generated_with_its_choices_in_the_help():
    parser = argparse.ArgumentParser()
    add_launcher_arguments(parser, [("ray", RayTuneOptions)])
    args = parser.parse_args(["--placement-strategy", "STRICT_SPREAD"])
    assert args.placement_strategy == "STRICT_SPREAD"
    assert "one of PACK, SPREAD, STRICT_PACK, STRICT_SPREAD" in " ".join(
        parser.format_help().split())


def test_choices_apply_to_any_options_dataclass():
    @dataclasses.dataclass(frozen=True)
    class Options:
        mode: str = option("a", "a mode", choices=("a", "b"))

        def __post_init__(self) -> None:
            check_choices(self, "--launcher test")

    assert Options("b").mode == "b"
    with pytest.raises(SpecError, match="use one of: a, b"):
        Options("c")
