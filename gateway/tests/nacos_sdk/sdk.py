#!/usr/bin/env python3
"""Another Nacos client over gRPC for the interop tests (gateway/tests/nacos_grpc.rs):
nacos-group's nacos-sdk-rust through its Python binding (nacos-sdk-rust-binding-py).

  sdk.py register SERVER SERVICE IP PORT [KEY=VALUE...]
      registers an ephemeral instance (bound to the SDK's gRPC connection), prints
      "registered" and stays until killed: the registry drops the instance with the connection
  sdk.py publish SERVER DATA_ID GROUP FILE
      publishes FILE's text as the config DATA_ID, prints "published"
  sdk.py instances SERVER SERVICE
      prints the instances of SERVICE as a JSON list (what another client sees)

SERVER is the HTTP address (127.0.0.1:8848); the SDK talks gRPC to its port + 1000. The SDK
writes its log under $HOME/logs/nacos: the tests point HOME at a temporary directory.
"""
import json
import signal
import sys
import time

import nacos_sdk_rust_binding_py as nacos


def options(server):
    return nacos.ClientOptions(server, "", app_name="tidegate-interop-test")


def register(server, service, ip, port, *labels):
    metadata = dict(label.split("=", 1) for label in labels)
    client = nacos.NacosNamingClient(options(server))
    instance = nacos.NacosServiceInstance(ip, int(port), weight=1.0, metadata=metadata, ephemeral=True)
    client.register_instance(service, "DEFAULT_GROUP", instance)
    print("registered", flush=True)
    # Until killed (bounded anyway: a test that forgets us does not leave us running).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)


def publish(server, data_id, group, path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    client = nacos.NacosConfigClient(options(server))
    if not client.publish_config(data_id, group, text):
        sys.exit("publish_config answered false")
    print("published", flush=True)


def instances(server, service):
    client = nacos.NacosNamingClient(options(server))
    found = client.get_all_instances(service, "DEFAULT_GROUP", subscribe=False)
    print(json.dumps([
        {"ip": i.ip, "port": i.port, "weight": i.weight, "healthy": i.healthy,
         "enabled": i.enabled, "metadata": i.metadata or {}}
        for i in found
    ]), flush=True)


if __name__ == "__main__":
    commands = {"register": register, "publish": publish, "instances": instances}
    if len(sys.argv) < 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
