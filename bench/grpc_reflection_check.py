#!/usr/bin/env python3
"""Talk to a running hoardd with a generic gRPC client and no .proto file at hand.

Lists the services by server reflection, checks health, and calls hoard.v1.Hoard/Hello through
descriptors obtained by reflection.

    pip install grpcio grpcio-reflection grpcio-health-checking protobuf
    python3 bench/grpc_reflection_check.py "$(hoard daemon status | sed -n 's/^socket: //p')"
"""
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    # The default channel: grpcio sends the socket path as :authority, which the daemon's
    # HTTP/2 stack accepts (vendor/README.md).
    channel = grpc.insecure_channel(f"unix://{sys.argv[1]}")
    db = ProtoReflectionDescriptorDatabase(channel)
    services = db.get_services()
    print("services:", ", ".join(services))
    assert "hoard.v1.Hoard" in services and "grpc.health.v1.Health" in services
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="hoard.v1.Hoard"))
    print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(health.status))
    pool = descriptor_pool.DescriptorPool(db)
    svc = pool.FindServiceByName("hoard.v1.Hoard")
    hello = svc.FindMethodByName("Hello")
    req_cls = message_factory.GetMessageClass(hello.input_type)
    resp_cls = message_factory.GetMessageClass(hello.output_type)
    call = channel.unary_unary(
        "/hoard.v1.Hoard/Hello",
        request_serializer=req_cls.SerializeToString,
        response_deserializer=resp_cls.FromString,
    )
    resp = call(req_cls(protocol_version="1.0.0", client_version="python"))
    print(f"Hello: daemon {resp.daemon_version}, protocol {resp.protocol_version}, pid {resp.pid}, store {resp.store_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
