"""requirements/{cpu,gpu}.txt pin, exactly, every dependency setup.cfg declares (issue 17).

`make install` installs the lock, not setup.cfg's ranges: a requirement added to setup.cfg
but not to the lock would never be installed, and a pin outside setup.cfg's range would
install what the package says it cannot run with. Both mean: run `make lock`.
"""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCK_DIR = REPO / "requirements"
VARIANTS = ("cpu", "gpu")  # the TensorFlow extras; each lock holds one of them


def declared(variant: str, setup_cfg: Path = REPO / "setup.cfg") -> list[Requirement]:
    """install_requires plus every extra, with only `variant` of the TensorFlow extras."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(setup_cfg)
    lines = cfg["options"]["install_requires"].splitlines()
    for extra, value in cfg["options.extras_require"].items():
        if extra not in VARIANTS or extra == variant:
            lines += value.splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def parse_lock(text: str) -> tuple[dict[str, str], list[str]]:
    """{normalised name: version} of the `name==version` lines, and every other line."""
    pins: dict[str, str] = {}
    bad: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:  # -e ., -r other.txt, --index-url ...
            bad.append(line)
            continue
        specs = list(req.specifier)
        # Only `name==X.Y.Z`: no extras (they pull unlisted deps), markers, URLs or ranges.
        if (req.extras or req.marker or req.url or len(specs) != 1
                or specs[0].operator != "==" or "*" in specs[0].version):
            bad.append(line)
        else:
            pins[canonicalize_name(req.name)] = specs[0].version
    return pins, bad


def problems(lock_text: str, requirements: list[Requirement]) -> list[str]:
    """Why a lock does not reproduce `requirements` exactly (empty when it does)."""
    pins, bad = parse_lock(lock_text)
    found = [f"not an exact pin: {line!r}" for line in bad]
    for req in requirements:
        name = canonicalize_name(req.name)  # tensorflow[and-cuda] -> tensorflow
        if name not in pins:
            found.append(f"{req} is not pinned")
        elif not req.specifier.contains(pins[name], prereleases=True):
            found.append(f"{name}=={pins[name]} is outside setup.cfg's {req}")
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_lock_pins_every_declared_dependency(variant: str) -> None:
    lock = (LOCK_DIR / f"{variant}.txt").read_text()
    assert problems(lock, declared(variant)) == [], "run `make lock`"


@pytest.mark.parametrize("variant", VARIANTS)
def test_lock_honours_the_holds(variant: str) -> None:
    """requirements/constraints.txt holds are what the locks pin (edited without relocking?)."""
    holds, _ = parse_lock((LOCK_DIR / "constraints.txt").read_text())
    pins, _ = parse_lock((LOCK_DIR / f"{variant}.txt").read_text())
    assert {name: pins.get(name) for name in holds} == holds, "run `make lock`"


def test_check_catches_a_missing_wrong_or_loose_pin() -> None:
    """The check above can fail: each kind of drift is reported."""
    reqs = [Requirement("pyyaml>=6"), Requirement("tensorflow[and-cuda]==2.21.*"),
            Requirement("numpy>=1.26,<3")]
    good = "# via make lock\ntensorflow==2.21.0\npyyaml==6.0.3\n    # via ray\nnumpy==2.4.6\n"
    assert problems(good, reqs) == []
    assert problems(good.replace("numpy==2.4.6\n", ""), reqs) == ["numpy<3,>=1.26 is not pinned"]
    assert problems(good.replace("2.21.0", "2.20.0"), reqs) == [
        "tensorflow==2.20.0 is outside setup.cfg's tensorflow[and-cuda]==2.21.*"]
    assert problems(good.replace("pyyaml==6.0.3", "pyyaml>=6"), reqs) == [
        "not an exact pin: 'pyyaml>=6'", "pyyaml>=6 is not pinned"]
    assert problems(good + "ray[tune]==2.60.0\n-e .\n", reqs) == [
        "not an exact pin: 'ray[tune]==2.60.0'", "not an exact pin: '-e .'"]
