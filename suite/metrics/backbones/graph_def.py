"""Read the structure of a frozen TensorFlow GraphDef without TensorFlow.

Preflight must say "this file is not the graph you think" before any
training, and before TensorFlow (seconds to import) is loaded. A GraphDef is
a protocol buffer; the little of it a check needs (node names, ops, inputs,
and the shape and integer values of constants) is read here straight from
the wire format:

    GraphDef    1: repeated NodeDef node
    NodeDef     1: name, 2: op, 3: repeated input, 5: map<string, AttrValue> attr
    AttrValue   8: TensorProto tensor (among others)
    TensorProto 1: dtype, 2: TensorShapeProto, 4: tensor_content, 7: int_val
    TensorShapeProto 2: repeated Dim (1: size)

Large constants (the weights) are skipped as byte slices, never copied, so a
95 MB graph is read in well under a second. Malformed input raises
ValueError. tests/integration/test_inception_graph.py checks these readings
against TensorFlow's own parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

DT_INT32 = 3  # tensorflow/core/framework/types.proto
DT_INT64 = 9
WIRE_VARINT, WIRE_64BIT, WIRE_BYTES, WIRE_32BIT = 0, 1, 2, 5
MAX_IDENTITY_HOPS = 16  # Identity chains between a constant and its user in frozen graphs


@dataclass(frozen=True)
class GraphNode:
    """One NodeDef: its name, op type, input names and raw (unparsed) attribute values."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, memoryview] = field(repr=False)


def read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """A base-128 varint at `pos`: (value, position after it)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def read_fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of each field of one message, in order."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == WIRE_VARINT:
            value, pos = read_varint(buf, pos)
            yield number, wire, value
            continue
        size = {WIRE_64BIT: 8, WIRE_32BIT: 4}.get(wire)
        if wire == WIRE_BYTES:
            size, pos = read_varint(buf, pos)
        elif size is None:
            raise ValueError(f"unsupported wire type {wire}")
        if pos + size > len(buf):
            raise ValueError("truncated field")
        yield number, wire, buf[pos:pos + size]
        pos += size


def text(value: int | memoryview) -> str:
    if not isinstance(value, memoryview):
        raise ValueError("expected a string field")
    return bytes(value).decode("utf-8")


def read_node(buf: memoryview) -> GraphNode:
    name, op, inputs, attrs = "", "", [], {}
    for number, _, value in read_fields(buf):
        if number == 1:
            name = text(value)
        elif number == 2:
            op = text(value)
        elif number == 3:
            inputs.append(text(value))
        elif number == 5 and isinstance(value, memoryview):  # a map entry: key 1, value 2
            entry = {n: v for n, _, v in read_fields(value)}
            attrs[text(entry.get(1, memoryview(b"")))] = entry.get(2, memoryview(b""))
    return GraphNode(name, op, tuple(inputs), attrs)


def read_graph_nodes(data: bytes) -> dict[str, GraphNode]:
    """The nodes of a serialized GraphDef by name; ValueError if it is not one."""
    nodes: dict[str, GraphNode] = {}
    try:
        for number, wire, value in read_fields(memoryview(data)):
            if number == 1:
                if wire != WIRE_BYTES:
                    raise ValueError("node field is not a message")
                node = read_node(value)  # type: ignore[arg-type]
                nodes[node.name] = node
    except UnicodeDecodeError as exc:
        raise ValueError(f"a name is not UTF-8 ({exc.reason})") from None
    if not nodes or "" in nodes:
        raise ValueError("no named nodes")
    return nodes


def input_node_name(reference: str) -> str:
    """'name:1' or '^name' (an input as NodeDef spells it) -> 'name'."""
    return reference.lstrip("^").split(":")[0]


def resolve_identity(nodes: dict[str, GraphNode], name: str) -> GraphNode | None:
    """The node `name` refers to, following Identity ops (frozen variables read through them)."""
    node = nodes.get(input_node_name(name))
    for _ in range(MAX_IDENTITY_HOPS):
        if node is None or node.op != "Identity" or not node.inputs:
            return node
        node = nodes.get(input_node_name(node.inputs[0]))
    return node


def const_tensor(node: GraphNode) -> memoryview:
    """The TensorProto of a Const node's `value` attribute."""
    if node.op != "Const" or "value" not in node.attrs:
        raise ValueError(f"node {node.name!r} is a {node.op}, not a constant")
    for number, _, value in read_fields(node.attrs["value"]):
        if number == 8 and isinstance(value, memoryview):
            return value
    raise ValueError(f"constant {node.name!r} holds no tensor")


def const_shape(node: GraphNode) -> tuple[int, ...]:
    """The shape of a Const node's tensor (() for a scalar)."""
    for number, _, value in read_fields(const_tensor(node)):
        if number == 2 and isinstance(value, memoryview):
            dims = []
            for dim_number, _, dim in read_fields(value):
                if dim_number == 2 and isinstance(dim, memoryview):
                    size = {n: v for n, _, v in read_fields(dim)}.get(1, 0)
                    dims.append(int(size) if isinstance(size, int) else -1)
            return tuple(dims)
    return ()


def const_ints(node: GraphNode) -> tuple[int, ...]:
    """The values of an int32/int64 Const node (from tensor_content or int_val)."""
    dtype, content, values = None, None, []
    for number, _, value in read_fields(const_tensor(node)):
        if number == 1:
            dtype = value
        elif number == 4 and isinstance(value, memoryview):
            content = bytes(value)
        elif number in (7, 10):  # int_val (packed or not), int64_val
            if isinstance(value, memoryview):
                pos = 0
                while pos < len(value):
                    item, pos = read_varint(value, pos)
                    values.append(item)
            else:
                values.append(value)
    if dtype not in (DT_INT32, DT_INT64):
        raise ValueError(f"constant {node.name!r} is not an integer tensor")
    if content is not None:
        width = 4 if dtype == DT_INT32 else 8
        values = [int.from_bytes(content[i:i + width], "little", signed=True)
                  for i in range(0, len(content), width)]
    count = 1
    for size in const_shape(node):
        count *= max(size, 0)
    if len(values) == 1 and count > 1:  # a splat: one value stands for all of them
        values = values * count
    # Negative varints are 64-bit two's complement on the wire.
    return tuple(v - (1 << 64) if v >= 1 << 63 else v for v in values)
