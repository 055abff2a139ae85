"""gradd.v1: the generated protocol stubs (from protos/gradd/v1, by `make protos`)."""
