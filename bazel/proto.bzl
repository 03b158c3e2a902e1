"""C++ code generation with Debian's protoc and grpc_cpp_plugin (no @com_google_protobuf)."""

def ddlm_cc_proto_library(name, srcs, deps = [], grpc = False, visibility = None):
    """Generates C++ for `srcs` (and gRPC stubs when grpc = True) as a cc_library.

    Args:
      name: the cc_library's name.
      srcs: .proto files in this package, imported as "<package>/<file>.proto".
      deps: other ddlm_cc_proto_library targets whose protos these import.
      grpc: also generate *.grpc.pb.{h,cc} service stubs.
      visibility: as for cc_library.
    """
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    proto_deps = [d + "_protos" for d in deps]
    native.filegroup(name = name + "_protos", srcs = srcs + proto_deps, visibility = visibility)
    grpc_flags = ""
    tools = ["@system//:protoc"]
    if grpc:
        grpc_flags = "--grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=$(location @system//:grpc_cpp_plugin)"
        tools.append("@system//:grpc_cpp_plugin")
    native.genrule(
        name = name + "_gen",
        srcs = srcs + proto_deps,
        outs = outs,
        tools = tools,
        cmd = "$(location @system//:protoc) --proto_path=. --cpp_out=$(GENDIR) %s %s" % (
            grpc_flags,
            " ".join(["$(location %s)" % s for s in srcs]),
        ),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["@system//:protobuf"] + (["@system//:grpc++"] if grpc else []),
        visibility = visibility,
    )
