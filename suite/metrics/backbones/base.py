"""The backbone protocol: what a feature backbone declares about itself (BackboneInfo)
and the FeatureExtractor it builds, so that metric code never names one.

Each backbone module (listed in catalog.py) holds one `BackboneInfo`:
the row columns it fills, what its logits mean, whether it needs labels, is
built per dataset, takes the weights option (`inception_weights`), how its weights are
checked before training, and its protocol. `features.py` registers these,
`evaluate.py` asks them; neither knows a backbone by name (as torch-fidelity's
feature extractors declare the features they provide).

Pure Python and numpy: importing it pulls in no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

import numpy as np

from suite.common.messages import quote
from suite.store import schema

if TYPE_CHECKING:
    from suite.data.catalog import ImageData

# What a backbone's logits are, which decides the columns they feed.
LOGITS_IMAGENET = "imagenet_classes"  # a generic classifier's classes: an Inception Score
LOGITS_DATASET = "dataset_classes"  # the dataset's own classes: class_accuracy, intra_class_fd
LOGITS_NONE = "none"  # features only
LogitsKind = Literal["imagenet_classes", "dataset_classes", "none"]
LOGITS_KINDS: tuple[str, ...] = (LOGITS_IMAGENET, LOGITS_DATASET, LOGITS_NONE)

# (dataset, weights option or None) -> a built extractor.
BackboneFactory = Callable[["ImageData", "str | None"], "FeatureExtractor"]
# weights option -> None, or GenbenchError saying what is missing and how to get it.
WeightsCheck = Callable[["str | None"], None]


@dataclass(frozen=True)
class BackboneColumns:
    """The result-row columns (constants of suite/store/schema.py) one backbone fills."""

    fd: str
    kid: str
    kid_std: str
    precision: str
    recall: str
    weights_id: str
    inception_score: str | None = None  # with LOGITS_IMAGENET
    class_accuracy: str | None = None  # with LOGITS_DATASET (conditional models)
    intra_class_fd: str | None = None  # with LOGITS_DATASET (conditional models)
    # Issue 11's columns. Left None, each is derived from the ones above (`<b>` is the FD
    # column after its first "_"): density_<b>, coverage_<b>, <fd>_inf, <metric>_floor;
    # a derived name that suite/store/schema.py lacks stays None (that metric is not recorded).
    density: str | None = None
    coverage: str | None = None
    fd_inf: str | None = None  # FD extrapolated to infinitely many fake samples
    fd_floor: str | None = None  # real-vs-real floors, beside each value
    kid_floor: str | None = None
    precision_floor: str | None = None
    recall_floor: str | None = None
    density_floor: str | None = None
    coverage_floor: str | None = None
    protocol: str | None = None  # one line saying what made the numbers (describe_protocol)

    def __post_init__(self) -> None:
        for name, column in self._derived_names().items():
            if getattr(self, name) is None and column in schema.COLUMN_TYPES:
                object.__setattr__(self, name, column)
        for f in fields(self):
            column = getattr(self, f.name)
            if column is not None and column not in schema.COLUMN_TYPES:
                raise ValueError(f"backbone column {f.name}={column!r} is not in "
                                 "suite/store/schema.py")

    def _derived_names(self) -> dict[str, str]:
        suffix = self.fd.split("_", 1)[-1]
        density = self.density or f"density_{suffix}"
        coverage = self.coverage or f"coverage_{suffix}"
        return {"density": density, "coverage": coverage, "fd_inf": f"{self.fd}_inf",
                "fd_floor": f"{self.fd}_floor", "kid_floor": f"{self.kid}_floor",
                "precision_floor": f"{self.precision}_floor",
                "recall_floor": f"{self.recall}_floor", "density_floor": f"{density}_floor",
                "coverage_floor": f"{coverage}_floor"}

    @property
    def distribution(self) -> tuple[str, str, str, str, str]:
        """FD, KID, KID std, precision, recall: fake against real features."""
        return self.fd, self.kid, self.kid_std, self.precision, self.recall

    @property
    def floors(self) -> dict[str, str]:
        """Metric -> floor column, for the floored metrics this backbone declares
        (keys: fd, kid, precision, recall, density, coverage)."""
        names = {"fd": self.fd_floor, "kid": self.kid_floor, "precision": self.precision_floor,
                 "recall": self.recall_floor, "density": self.density_floor,
                 "coverage": self.coverage_floor}
        return {metric: column for metric, column in names.items() if column is not None}

    @property
    def qualified(self) -> list[str]:
        """Issue 11's columns this backbone declares: density, coverage, FD_inf, floors."""
        return [c for c in (self.density, self.coverage, self.fd_inf, *self.floors.values())
                if c is not None]


@dataclass(frozen=True)
class BackboneInfo:
    """One backbone, described: everything evaluation and preflight need to ask."""

    name: str
    build: BackboneFactory
    columns: BackboneColumns
    logits: LogitsKind
    needs_labels: bool  # trained on the dataset's labels: refused for unlabelled data
    per_dataset: bool  # one network per dataset (else one serves all datasets)
    takes_weights: bool  # built from the weights option (`inception_weights`)
    resize_method: str  # what happens to images before the network (recorded in rows)
    protocol: str  # one line: input, network, feature layer, logits (for docs and reports)
    check_weights: WeightsCheck | None = None  # preflight; None: nothing to check
    needs_labels_reason: str = ""  # why labels are needed, for the error on unlabelled data

    def __post_init__(self) -> None:
        if self.logits not in LOGITS_KINDS:
            raise ValueError(f"backbone {self.name!r}: logits {self.logits!r}; "
                             f"known: {', '.join(LOGITS_KINDS)}")
        c = self.columns
        wants = {"inception_score": self.logits == LOGITS_IMAGENET,
                 "class_accuracy": self.logits == LOGITS_DATASET,
                 "intra_class_fd": self.logits == LOGITS_DATASET}
        for column, wanted in wants.items():
            if (getattr(c, column) is not None) != wanted:
                verb = "need a" if wanted else "fill no"
                raise ValueError(f"backbone {self.name!r}: logits {self.logits!r} {verb} "
                                 f"{column} column")
        if self.logits == LOGITS_DATASET and not self.needs_labels:
            raise ValueError(f"backbone {self.name!r}: dataset-class logits need labels")

    def tags(self) -> dict[str, object]:
        """The facts a validator reads without building anything (Registry tags)."""
        return {"needs_labels": self.needs_labels, "per_dataset": self.per_dataset,
                "takes_weights": self.takes_weights, "logits": self.logits,
                "resize_method": self.resize_method, "protocol": self.protocol}

    def unlabelled_problem(self, dataset: str) -> str:
        """Why this backbone cannot serve `dataset`, which has no labels."""
        reason = f" ({self.needs_labels_reason})" if self.needs_labels_reason else ""
        return (f"dataset {quote(dataset)} has no labels, so it cannot have a `{self.name}` "
                f"backbone{reason}")

    def column_names(self, conditional: bool) -> list[str]:
        """The sample-quality columns this backbone fills for a (non-)conditional model."""
        c = self.columns
        names = list(c.distribution)
        if self.logits == LOGITS_IMAGENET:
            names.append(c.inception_score)
        if self.logits == LOGITS_DATASET and conditional:
            names += [c.class_accuracy, c.intra_class_fd]
        return names


class FeatureExtractor:
    """Images float32 (N, H, W, C) in [0, 1] -> features (N, d), and logits when it has them.

    `info` says what the backbone provides (columns, logits, protocol);
    `weights_id` names the exact weights (results are comparable only between
    equal ids). Subclasses set `info`, `weights_id`, `feature_dim`, `has_logits`.
    """

    info: BackboneInfo
    weights_id: str = ""
    feature_dim: int = 0
    has_logits: bool = False

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def resize_method(self) -> str:
        return self.info.resize_method

    def images_to_outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Features (N, d) and logits (N, classes) or None, in one pass."""
        raise NotImplementedError

    def describe_protocol(self, n_real: int, n_fake: int, split: str) -> str:
        """The value of the backbone's protocol column: weights, resize and samples, so a row
        says exactly which protocol made its numbers (and which published ones they match)."""
        return (f"{self.weights_id}; {self.resize_method}; {self.feature_dim}-d; "
                f"n_real={n_real}; n_fake={n_fake}; split={split}")

    def images_to_features(self, images: np.ndarray) -> np.ndarray:
        return self.images_to_outputs(images)[0]

    def images_to_logits(self, images: np.ndarray) -> np.ndarray:
        if not self.has_logits:
            raise ValueError(f"backbone {self.name!r} ({self.weights_id}) has no logits")
        logits = self.images_to_outputs(images)[1]
        assert logits is not None
        return logits
