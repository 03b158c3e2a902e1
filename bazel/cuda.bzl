"""Libraries with a CUDA half, built so that --config=cuda recompiles only that half.

Both builds compile against the same LibTorch headers (//bazel:torch), and --config=cuda
keeps the CPU build's output directory. So a compile action whose command line and
inputs are the same in both builds is not run again when switching: only the CUDA halves
below, the few targets that select on //bazel:cuda themselves, and the links. For that,
nothing that differs between the builds may reach a dependent's compile: a define, an
include path or a header of the CUDA runtime. The CUDA half is a library of its own,
and its dependents see only its objects and link flags (`link_only`), never its headers.
"""

def _link_only_impl(ctx):
    return [CcInfo(linking_context = ctx.attr.dep[CcInfo].linking_context)]

link_only = rule(
    implementation = _link_only_impl,
    attrs = {"dep": attr.label(providers = [CcInfo])},
    doc = "The linking half of a cc_library: its objects and link flags, not its headers, " +
          "include paths or defines.",
)

def ddlm_cuda_library(name, hdrs, srcs = [], cpu_srcs = [], cuda_srcs = [], deps = [], cuda_deps = [],
                      cuda_local_defines = [], visibility = None):
    """A cc_library `name` whose compile context (hdrs, deps) is the same in both builds.

    srcs: compiled in both builds. cpu_srcs: only without --config=cuda. cuda_srcs: only
    with it, against the CUDA runtime's and NCCL's headers (//bazel:cuda_runtime), `deps`
    and `cuda_deps`, with `cuda_local_defines`; dependents link their objects.
    """
    impl = name + "_cuda_half"
    native.cc_library(
        name = impl,
        srcs = select({
            "//bazel:cuda": cuda_srcs + hdrs,
            "//conditions:default": [],
        }),
        local_defines = select({
            "//bazel:cuda": cuda_local_defines,
            "//conditions:default": [],
        }),
        deps = select({
            "//bazel:cuda": deps + cuda_deps + ["//bazel:cuda_runtime"],
            "//conditions:default": [],
        }),
        visibility = ["//visibility:private"],
    )
    link_only(
        name = impl + "_objects",
        dep = ":" + impl,
        visibility = ["//visibility:private"],
    )
    native.cc_library(
        name = name,
        srcs = srcs + select({
            "//bazel:cuda": [],
            "//conditions:default": cpu_srcs,
        }),
        hdrs = hdrs,
        deps = deps + select({
            "//bazel:cuda": [":" + impl + "_objects"],
            "//conditions:default": [],
        }),
        visibility = visibility,
    )
