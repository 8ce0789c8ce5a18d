"""FrozenGraph: a frozen TensorFlow 1 GraphDef run in TensorFlow 2, as TTUR's fid.py runs it.

The graph is imported into its own `tf.Graph` and run by a
`tf.compat.v1.Session`, not wrapped into a TF 2 function: the 2015 Inception
graph holds `BatchNormWithGlobalNormalization` ops, which TensorFlow refuses
to run in a graph newer than GraphDef version 9. Importing into an empty
graph keeps the file's own (older) version, exactly as TF 1 did; a
`wrap_function` import runs under the current version and fails (measured
with TF 2.21: "Op BatchNormWithGlobalNormalization is not available in
GraphDef version 2474").

Batches of any size: TTUR feeds `ExpandDims:0` and patches every static
shape whose batch dimension is 1 (the graph was exported for one decoded
JPEG). Here the input tensor is replaced at import (`input_map`) by a
placeholder of shape (None, None, None, 3), and the `_output_shapes`
attributes recorded at export are dropped first, so shape inference gives
every tensor after the input a dynamic batch dimension.

TensorFlow is imported when a FrozenGraph is made, never at module import.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IMPORT_SCOPE = "frozen"  # the imported nodes' name scope (TTUR: "FID_Inception_Net")
INPUT_NAME = "images"


class FrozenGraph:
    """Images (N, H, W, 3) float32 fed at `input_tensor` -> the `outputs` tensors, in one run."""

    def __init__(self, data: bytes, input_tensor: str, outputs: Sequence[str]) -> None:
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(data)
        for node in graph_def.node:  # export-time shapes pin the batch to 1: infer them anew
            node.attr.pop("_output_shapes", None)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images = tf.compat.v1.placeholder(tf.float32, (None, None, None, 3),
                                                   name=INPUT_NAME)
            self.outputs = tf.graph_util.import_graph_def(
                graph_def, input_map={input_tensor: self.images},
                return_elements=list(outputs), name=IMPORT_SCOPE)
        self.graph.finalize()  # nothing is added later: runs are thread-safe and leak nothing
        self.session = tf.compat.v1.Session(graph=self.graph)
        self.producer = self.graph.graph_def_versions.producer

    def tensor(self, name: str):
        """A tensor of the imported graph by its name in the GraphDef (e.g. 'pool_3:0')."""
        return self.graph.get_tensor_by_name(f"{IMPORT_SCOPE}/{name}")

    def op_input(self, op_name: str, index: int) -> np.ndarray:
        """The value of input `index` of op `op_name`; it must not depend on the images."""
        op = self.graph.get_operation_by_name(f"{IMPORT_SCOPE}/{op_name}")
        return np.asarray(self.session.run(op.inputs[index]))

    def static_shape(self, output: int) -> tuple[int | None, ...]:
        return tuple(self.outputs[output].shape.as_list())

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        """The outputs for one batch of images, float32 (N, H, W, 3)."""
        return [np.asarray(v) for v in self.session.run(self.outputs, {self.images: images})]

    def close(self) -> None:
        self.session.close()
