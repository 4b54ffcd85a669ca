"""An independent matchbox gRPC client (Python grpcio, code generated from
matchbox's protos by grpcio-tools) replaying what terraform-provider-matchbox
does for a Lokomotive cluster, phase by phase (see ../matchbox_grpc.rs).

usage: client.py PHASE GEN_DIR GRPC_ADDR CERT_DIR HTTP_BASE
"""

import json
import sys
import urllib.error
import urllib.request

phase, gen_dir, addr, cert_dir, http = sys.argv[1:6]
sys.path.insert(0, gen_dir)

import grpc  # noqa: E402
from matchbox.rpc.rpcpb import rpc_pb2_grpc as rpc  # noqa: E402
from matchbox.server.serverpb import messages_pb2 as m  # noqa: E402
from matchbox.storage.storagepb import storage_pb2 as st  # noqa: E402

NODE = "lokomotive-controller-0.k8s.localdomain"
MAC = "52:54:00:aa:bb:01"
INSTALL = "cached-flatcar-linux-install-" + NODE
OS = "lokomotive-controller-" + NODE
RAW_INSTALL = json.dumps({"ignition": {"version": "2.3.0"}, "storage": {"files": [{"path": "/opt/installer"}]}})
# A templated config (stored like the provider's container_linux_config,
# `<name>.yaml.tmpl`): JSON Ignition with group metadata substituted.
OS_TEMPLATE = '{"ignition":{"version":"2.3.0"},"storage":{"files":[{"path":"/etc/hostname","contents":{"source":"data:,{{.hostname}}"}}]},"racker":"{{.mac}} {{.request.query.os}}"}'
GENERIC = "hostname={{.hostname}} domain={{ .domain }}\n"


def read(name):
    with open(f"{cert_dir}/{name}", "rb") as f:
        return f.read()


def channel(with_cert=True):
    if with_cert:
        creds = grpc.ssl_channel_credentials(
            root_certificates=read("ca.crt"),
            private_key=read("client.key"),
            certificate_chain=read("client.crt"),
        )
    else:
        creds = grpc.ssl_channel_credentials(root_certificates=read("ca.crt"))
    return grpc.secure_channel(addr, creds)


def stubs(ch):
    return (rpc.ProfilesStub(ch), rpc.GroupsStub(ch), rpc.IgnitionStub(ch),
            rpc.GenericStub(ch), rpc.SelectStub(ch))


def http_get(path):
    try:
        with urllib.request.urlopen(http + path, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def expect_code(fn, code):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, (e.code(), e.details())
        return e
    raise AssertionError(f"expected {code}")


def put():
    profiles, groups, ignition, generic, _ = stubs(channel())
    # matchbox_profile "cached-flatcar-linux-install" with raw_ignition:
    # ProfilePut, then IgnitionPut of "<name>.ign".
    profiles.ProfilePut(m.ProfilePutRequest(profile=st.Profile(
        id=INSTALL,
        boot=st.NetBoot(
            kernel="/assets/flatcar/current/flatcar_production_pxe.vmlinuz",
            initrd=["/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz"],
            args=["initrd=flatcar_production_pxe_image.cpio.gz",
                  "ignition.config.url=http://172.24.213.1:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp}",
                  "flatcar.first_boot=yes", "console=ttyS1,57600n8", "flatcar.autologin"]),
        ignition_id=INSTALL + ".ign")), timeout=10)
    ignition.IgnitionPut(m.IgnitionPutRequest(name=INSTALL + ".ign", config=RAW_INSTALL.encode()), timeout=10)
    # matchbox_profile "node" with a template and a generic config.
    profiles.ProfilePut(m.ProfilePutRequest(profile=st.Profile(
        id=OS, ignition_id=OS + ".yaml.tmpl", generic_id=OS)), timeout=10)
    ignition.IgnitionPut(m.IgnitionPutRequest(name=OS + ".yaml.tmpl", config=OS_TEMPLATE.encode()), timeout=10)
    generic.GenericPut(m.GenericPutRequest(name=OS, config=GENERIC.encode()), timeout=10)
    # matchbox_group "install" (mac) and "node" (mac + os=installed), the
    # MAC in another spelling than the one nodes use.
    meta = json.dumps({"hostname": NODE, "domain": "k8s.localdomain"}).encode()
    groups.GroupPut(m.GroupPutRequest(group=st.Group(
        id="install-" + NODE, profile=INSTALL, selector={"mac": "52-54-00-AA-BB-01"})), timeout=10)
    groups.GroupPut(m.GroupPutRequest(group=st.Group(
        id="lokomotive-controller-" + NODE, name=NODE, profile=OS,
        selector={"mac": MAC, "os": "installed"}, metadata=meta)), timeout=10)
    # A group with a MAC that is none is refused.
    expect_code(lambda: groups.GroupPut(m.GroupPutRequest(group=st.Group(
        id="bad", profile=OS, selector={"mac": "zz"})), timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    print("put ok")


def get():
    profiles, groups, ignition, generic, select = stubs(channel())
    p = profiles.ProfileGet(m.ProfileGetRequest(id=INSTALL), timeout=10).profile
    assert p.id == INSTALL and p.ignition_id == INSTALL + ".ign", p
    assert p.boot.kernel.endswith("flatcar_production_pxe.vmlinuz"), p
    assert list(p.boot.initrd) == ["/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz"], p
    assert "flatcar.first_boot=yes" in p.boot.args, p
    assert ignition.IgnitionGet(m.IgnitionGetRequest(name=INSTALL + ".ign"), timeout=10).config == RAW_INSTALL.encode()
    assert ignition.IgnitionGet(m.IgnitionGetRequest(name=OS + ".yaml.tmpl"), timeout=10).config == OS_TEMPLATE.encode()
    assert generic.GenericGet(m.GenericGetRequest(name=OS), timeout=10).config == GENERIC.encode()
    g = groups.GroupGet(m.GroupGetRequest(id="lokomotive-controller-" + NODE), timeout=10).group
    assert g.profile == OS and dict(g.selector) == {"mac": MAC, "os": "installed"}, g
    assert json.loads(g.metadata) == {"hostname": NODE, "domain": "k8s.localdomain"}, g.metadata
    g = groups.GroupGet(m.GroupGetRequest(id="install-" + NODE), timeout=10).group
    assert dict(g.selector) == {"mac": MAC}, "mac normalised"
    ids = sorted(p.id for p in profiles.ProfileList(m.ProfileListRequest(), timeout=10).profiles)
    assert ids == sorted([INSTALL, OS]), ids
    ids = sorted(g.id for g in groups.GroupList(m.GroupListRequest(), timeout=10).groups)
    assert ids == sorted(["install-" + NODE, "lokomotive-controller-" + NODE]), ids
    sel = select.SelectProfile(m.SelectProfileRequest(labels={"mac": "52-54-00-aa-bb-01"}), timeout=10)
    assert sel.profile.id == INSTALL, sel
    sel = select.SelectGroup(m.SelectGroupRequest(labels={"mac": MAC, "os": "installed"}), timeout=10)
    assert sel.group.profile == OS, sel
    expect_code(lambda: profiles.ProfileGet(m.ProfileGetRequest(id="nope"), timeout=10), grpc.StatusCode.NOT_FOUND)
    print("get ok")


def boot():
    # What the node does: iPXE script, installer Ignition, then (after the
    # install) the installed system's Ignition with os=installed.
    status, body = http_get("/ipxe?mac=52-54-00-aa-bb-01")
    assert status == 200, (status, body)
    assert body.startswith("#!ipxe\nkernel /assets/flatcar/current/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz "), body
    assert "initrd /assets/flatcar/current/flatcar_production_pxe_image.cpio.gz\n" in body, body
    status, body = http_get("/ignition?uuid=&mac=52-54-00-aa-bb-01")
    assert status == 200 and body == RAW_INSTALL, (status, body)
    status, body = http_get("/ignition?mac=52-54-00-aa-bb-01&os=installed")
    assert status == 200, (status, body)
    ign = json.loads(body)
    assert ign["storage"]["files"][0]["contents"]["source"] == "data:," + NODE, ign
    assert ign["racker"] == MAC + " installed", ign
    status, body = http_get("/generic?mac=52:54:00:aa:bb:01&os=installed")
    assert (status, body) == (200, f"hostname={NODE} domain=k8s.localdomain\n"), (status, body)
    status, body = http_get("/metadata?mac=52:54:00:aa:bb:01&os=installed")
    assert status == 200 and f"HOSTNAME={NODE}\n" in body and "OS=installed\n" in body, body
    print("boot ok")


def delete():
    profiles, groups, ignition, generic, _ = stubs(channel())
    # terraform destroy: groups, then profiles and their templates.
    groups.GroupDelete(m.GroupDeleteRequest(id="lokomotive-controller-" + NODE), timeout=10)
    groups.GroupDelete(m.GroupDeleteRequest(id="install-" + NODE), timeout=10)
    profiles.ProfileDelete(m.ProfileDeleteRequest(id=OS), timeout=10)
    ignition.IgnitionDelete(m.IgnitionDeleteRequest(name=OS + ".yaml.tmpl"), timeout=10)
    generic.GenericDelete(m.GenericDeleteRequest(name=OS), timeout=10)
    profiles.ProfileDelete(m.ProfileDeleteRequest(id=INSTALL), timeout=10)
    ignition.IgnitionDelete(m.IgnitionDeleteRequest(name=INSTALL + ".ign"), timeout=10)
    expect_code(lambda: groups.GroupGet(m.GroupGetRequest(id="install-" + NODE), timeout=10), grpc.StatusCode.NOT_FOUND)
    expect_code(lambda: ignition.IgnitionGet(m.IgnitionGetRequest(name=OS + ".yaml.tmpl"), timeout=10), grpc.StatusCode.NOT_FOUND)
    assert len(profiles.ProfileList(m.ProfileListRequest(), timeout=10).profiles) == 0
    assert len(groups.GroupList(m.GroupListRequest(), timeout=10).groups) == 0
    print("delete ok")


def refused(with_cert):
    profiles = rpc.ProfilesStub(channel(with_cert=with_cert))
    e = expect_code(lambda: profiles.ProfileList(m.ProfileListRequest(), timeout=10), grpc.StatusCode.UNAVAILABLE)
    print("refused ok:", e.details())


{
    "put": put,
    "get": get,
    "boot": boot,
    "delete": delete,
    "no-cert": lambda: refused(False),
    "other-ca": lambda: refused(True),
}[phase]()
