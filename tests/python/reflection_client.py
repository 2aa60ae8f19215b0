#!/usr/bin/env python3
"""Calls one unary gRPC method knowing nothing but what server reflection tells.

No code is generated from our .proto files: the schema comes from the server's
reflection service, so this proves a third-party client can use the API from
reflection alone.

    python3 reflection_client.py --addr 127.0.0.1:PORT \
        --method pharos.v1.CatalogService/GetOverview [--json '{}'] [--token T]

Prints the response as JSON on stdout. On a gRPC error prints `CODE: message` on
stderr and exits 2.
"""

import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

# Importing the well-known types puts them in the default pool, the fallback for a
# server that references them without serving them.
from google.protobuf import (  # noqa: F401
    any_pb2, duration_pb2, empty_pb2, field_mask_pb2, struct_pb2, timestamp_pb2, wrappers_pb2)

# grpcio-reflection ships only the v1alpha messages; v1 has the same messages under
# another package name, so the same classes serialize requests for both.
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

REFLECTION_VERSIONS = ("v1", "v1alpha")


class ReflectionError(Exception):
    pass


def reflect(channel, version, request, timeout):
    """One request/response exchange on the bidirectional reflection stream."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=ServerReflectionRequest.SerializeToString,
        response_deserializer=ServerReflectionResponse.FromString,
    )
    for response in call(iter([request]), timeout=timeout):
        if response.HasField("error_response"):
            err = response.error_response
            raise ReflectionError(f"reflection error {err.error_code}: {err.error_message}")
        return response
    raise ReflectionError("reflection stream closed without a response")


def fetch_files(channel, symbol, timeout):
    """FileDescriptorProtos of the file defining `symbol` and all its dependencies."""
    for version in REFLECTION_VERSIONS:
        try:
            response = reflect(channel, version, ServerReflectionRequest(file_containing_symbol=symbol), timeout)
            break
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNIMPLEMENTED or version == REFLECTION_VERSIONS[-1]:
                raise
    files = {}

    def add(serialized_files):
        for raw in serialized_files:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[fdp.name] = fdp

    add(response.file_descriptor_response.file_descriptor_proto)
    # Servers usually send the transitive dependencies along; ask for any that are missing.
    def missing():
        return sorted({d for f in list(files.values()) for d in f.dependency} - files.keys())

    while missing():
        name = missing()[0]
        try:
            r = reflect(channel, version, ServerReflectionRequest(file_by_filename=name), timeout)
            add(r.file_descriptor_response.file_descriptor_proto)
        except (ReflectionError, grpc.RpcError):
            if not name.startswith("google/protobuf/"):
                raise
        if name not in files:  # a well-known type the server does not serve
            fdp = descriptor_pb2.FileDescriptorProto()
            descriptor_pool.Default().FindFileByName(name).CopyToProto(fdp)
            files[name] = fdp
    return files


def build_pool(files):
    """A descriptor pool with every file added after its dependencies."""
    pool, added = descriptor_pool.DescriptorPool(), set()

    def add(name):
        if name in added:
            return
        for dep in files[name].dependency:
            add(dep)
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return pool


def parse_method(text):
    """`pkg.Service/Method`, `/pkg.Service/Method` or `pkg.Service.Method`."""
    text = text.lstrip("/")
    service, sep, method = text.partition("/")
    if not sep:
        service, _, method = text.rpartition(".")
    if not service or not method:
        raise SystemExit(f"--method {text!r}: expected package.Service/Method")
    return service, method


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="HOST:PORT of the gRPC server")
    parser.add_argument("--method", required=True, help="package.Service/Method")
    parser.add_argument("--json", default="{}", help="request message as JSON (default {})")
    parser.add_argument("--token", help="sent as 'authorization: Bearer TOKEN' metadata")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default 10)")
    args = parser.parse_args()

    service_name, method_name = parse_method(args.method)
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else None
    with grpc.insecure_channel(args.addr) as channel:
        try:
            pool = build_pool(fetch_files(channel, service_name, args.timeout))
            method = pool.FindServiceByName(service_name).methods_by_name.get(method_name)
            if method is None:
                raise SystemExit(f"{service_name} has no method {method_name}")
            request_cls = message_factory.GetMessageClass(method.input_type)
            response_cls = message_factory.GetMessageClass(method.output_type)
            request = json_format.Parse(args.json, request_cls(), descriptor_pool=pool)
            call = channel.unary_unary(
                f"/{service_name}/{method_name}",
                request_serializer=request_cls.SerializeToString,
                response_deserializer=response_cls.FromString,
            )
            response = call(request, timeout=args.timeout, metadata=metadata)
        except grpc.RpcError as e:
            print(f"{e.code().name}: {e.details()}", file=sys.stderr)
            return 2
        except (ReflectionError, json_format.ParseError, json.JSONDecodeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    print(json_format.MessageToJson(response, preserving_proto_field_name=True, descriptor_pool=pool))
    return 0


if __name__ == "__main__":
    sys.exit(main())
