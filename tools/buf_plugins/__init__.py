"""The buf plugins ``buf generate`` runs (buf.gen.yaml): the OpenAPI document, the gRPC stubs."""
