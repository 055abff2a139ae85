"""gradd.wire: the wire tables the SDK and the server share, next to the protocol they serve.

The protocol itself is `gradd.v1` (the .proto files in protos/gradd/v1 and the stubs `make
protos` generates beside them). What both sides write or read by hand lives here, once:

- `dtypes`: each engine dtype's wire DType number, and back (to the engine's dtype, to NumPy's).
- `varint`: protobuf's base-128 varints (the SDK and the server write protobuf bytes directly).
- `tape`: the lean form of ops (Command.tape): the record layout, argument kinds and flags.
"""
