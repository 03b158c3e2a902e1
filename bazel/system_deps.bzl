"""Repository rules that map Debian's system libraries to Bazel targets.

Nothing is downloaded: headers come from /usr/include (the compiler's built-in search
path) and link flags from pkg-config, so the targets follow whatever Debian installs.
"""

# Target name -> pkg-config modules (or None: plain -l flags given in _PLAIN_LIBS).
_PKG_CONFIG_TARGETS = {
    "absl_base": ["absl_base"],
    "absl_container": ["absl_flat_hash_map", "absl_flat_hash_set"],
    "absl_flags": ["absl_flags", "absl_flags_parse", "absl_flags_usage"],
    "absl_status": ["absl_status", "absl_statusor"],
    "absl_strings": ["absl_strings", "absl_str_format"],
    "absl_synchronization": ["absl_synchronization"],
    "absl_time": ["absl_time"],
    "glog": ["libglog"],
    "microhttpd": ["libmicrohttpd"],
    "gmock": ["gmock"],
    "grpc++": ["grpc++"],
    "gtest": ["gtest"],
    "gtest_main": ["gtest_main"],
    "protobuf": ["protobuf"],
    "zlib": ["zlib"],
}

# Libraries that ship no .pc file in Debian 12.
_PLAIN_LIBS = {
    "grpc++_reflection": ["-lgrpc++_reflection"],
    "gloo": ["-lgloo"],
    # Google's tcmalloc. Every ddlm binary links it: glibc's malloc maps and unmaps each
    # large tensor (the 700 x 33,278 score matrix every step), and pays the page faults
    # of touching it again each time.
    "tcmalloc": ["-Wl,--no-as-needed", "-ltcmalloc_minimal", "-Wl,--as-needed"],
}

def _pkg_config(ctx, modules):
    result = ctx.execute(["pkg-config", "--libs"] + modules)
    if result.return_code != 0:
        fail("pkg-config could not find %s (run ./setup.sh to install ddlm's Debian packages):\n%s" %
             (" ".join(modules), result.stderr))
    return result.stdout.strip().split(" ")

def _system_deps_impl(ctx):
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in _PKG_CONFIG_TARGETS.items():
        flags = [f for f in _pkg_config(ctx, modules) if f]
        lines.append("cc_library(name = %r, linkopts = %r)" % (name, flags))
    for name, flags in _PLAIN_LIBS.items():
        deps = ["grpc++"] if name == "grpc++_reflection" else []
        lines.append("cc_library(name = %r, linkopts = %r, deps = %r)" % (name, flags, deps))
    for tool in ["protoc", "grpc_cpp_plugin"]:
        path = ctx.which(tool)
        if not path:
            fail("%s not found on PATH (run ./setup.sh)" % tool)
        ctx.symlink(path, tool)
    lines.append('exports_files(["protoc", "grpc_cpp_plugin"])')
    ctx.file("BUILD", "\n".join(lines) + "\n")

system_deps = repository_rule(
    implementation = _system_deps_impl,
    environ = ["PATH", "PKG_CONFIG_PATH"],
    local = True,
)

# Both builds take LibTorch from the torch wheel that ./setup.sh installs in this venv
# (`--repo_env=DDLM_TORCH_VENV=...` for another): the default build only its CPU
# libraries (libtorch_cpu.so and libc10.so, with MKL and oneDNN inside; the CPU set-up
# installs just those and the two small CUDA runtime wheels libtorch_cpu.so loads), the
# CUDA build (--config=cuda) also libtorch_cuda.so, cuDNN and NCCL. One LibTorch, one
# set of headers, for both.
_TORCH_WHEEL_VENV = "/opt/ddlm/torch-2.11.0"

def _find_site_packages(ctx, venv):
    result = ctx.execute(["sh", "-c", "ls -d %s/lib/python3*/site-packages 2>/dev/null | head -1" % venv])
    path = result.stdout.strip()
    if path and ctx.path(path + "/torch/include/torch").exists:
        return path
    return None

def _link_wheel_headers(ctx, torch):
    # The wheel's include/ also carries the Protobuf headers LibTorch was built with
    # (google/) and pybind11; the project compiles against Debian's Protobuf, so expose
    # everything but those.
    for entry in ctx.path(torch + "/include").readdir():
        if entry.basename not in ["google", "pybind11"]:
            ctx.symlink(entry, "include/" + entry.basename)

# -lgloo first: the wheel's libtorch_cpu.so carries its own, newer copy of Gloo and
# exports its symbols. Loading Debian's libgloo (the one whose headers the project
# compiles against) ahead of LibTorch makes every gloo:: symbol bind to it; otherwise
# calls land half in one copy, half in the other, and crash. ddlm never uses LibTorch's
# own Gloo (c10d).
#
# C10_USE_GLOG: the wheel's c10 was built without glog, so its headers would define
# their own LOG/CHECK macros, and whichever of them and glog's a file includes last would
# win (c10's drops INFO lines). With it, c10's headers use glog's.
_WHEEL_HEADERS = """cc_library(
    name = "headers",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp", "include/**/*.cuh"]),
    includes = ["include", "include/torch/csrc/api/include"],
    defines = ["_GLIBCXX_USE_CXX11_ABI=1", "C10_USE_GLOG"],
)
"""

# Link flags only, no headers: //bazel:torch compiles every file against @libtorch's
# headers in both builds and links these (CPU or CUDA), so the CUDA build recompiles
# only the few files that differ (see bazel/BUILD).
_WHEEL_LIBS = """cc_library(
    name = "libs",
    # --no-as-needed: libtorch_cuda.so (the CUDA build) registers the CUDA kernels when
    # it loads, and no symbol of it is referenced. Left on (Debian's default) for the
    # libraries after it: Bazel's test shared libraries rely on the binary loading their
    # dependencies.
    linkopts = ["-L{torchlib}"] + {rpaths} + ["-Wl,--no-as-needed", "-lgloo"] + {libs},
)
"""

_LIBTORCH_ALIAS = """
# Headers and libraries together (for use outside //bazel:torch).
cc_library(
    name = "libtorch",
    deps = [":headers", ":libs"],
)
"""

def _rpaths(libdirs):
    rpaths = []
    for d in libdirs:
        rpaths += ["-Wl,-rpath," + d, "-Wl,-rpath-link," + d]
    return rpaths

def _libtorch_configure_impl(ctx):
    header = 'package(default_visibility = ["//visibility:public"])\n'
    root = ctx.os.environ.get("DDLM_LIBTORCH", "")
    if root == "":
        venv = ctx.os.environ.get("DDLM_TORCH_VENV", _TORCH_WHEEL_VENV)
        site = _find_site_packages(ctx, venv)
        if site == None:
            fail("LibTorch not found: the build takes it from the torch wheel in %s; " % venv +
                 "run ./setup.sh (or set --repo_env=DDLM_TORCH_VENV to a venv holding torch, " +
                 "or --repo_env=DDLM_LIBTORCH to a LibTorch directory)")
        torch = site + "/torch"
        _link_wheel_headers(ctx, torch)

        # libtorch_cpu.so needs libcudart and libcupti (for its profiler), which it finds
        # through its own RPATH at run time; the linker needs to be told where they are.
        ctx.file("BUILD", header + _WHEEL_HEADERS + _WHEEL_LIBS.format(
            torchlib = torch + "/lib",
            rpaths = _rpaths([torch + "/lib", site + "/nvidia/cu13/lib"]),
            libs = ["-ltorch_cpu", "-lc10"],
        ) + _LIBTORCH_ALIAS)
        return
    if root in ["/usr", "/usr/"]:
        # Debian's libtorch-dev: headers under /usr/include (a built-in search path),
        # libraries in the multiarch directory.
        libdir = "/usr/lib/x86_64-linux-gnu"
        api = "/usr/include/torch/csrc/api/include"
        if not ctx.path(api + "/torch/torch.h").exists:
            fail("DDLM_LIBTORCH=/usr: Debian's LibTorch is not installed (apt-get install libtorch-dev)")

        # The C++ frontend's headers sit outside the default search path; link them
        # into this repository so that `includes` can export them to dependents.
        ctx.symlink(api, "api_include")
        ctx.file("BUILD", header + """cc_library(
    name = "headers",
    hdrs = glob(["api_include/**/*.h"]),
    includes = ["api_include"],
)
cc_library(
    name = "libs",
    linkopts = ["-L{libdir}", "-ltorch", "-ltorch_cpu", "-lc10"],
)
""".format(libdir = libdir) + _LIBTORCH_ALIAS)
        return
    if not ctx.path(root + "/include/torch").exists:
        fail("DDLM_LIBTORCH=%s has no include/torch: point it at a LibTorch directory " % root +
             "(the one holding include/ and lib/)")

    # Another LibTorch (for example an unpacked libtorch archive): headers are linked
    # into this repository so that Bazel can track them.
    ctx.symlink(root + "/include", "include")
    libdir = root + "/lib"
    ctx.file("BUILD", header + """cc_library(
    name = "headers",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp", "include/**/*.cuh"]),
    includes = ["include", "include/torch/csrc/api/include"],
    defines = ["_GLIBCXX_USE_CXX11_ABI=1"],
)
cc_library(
    name = "libs",
    linkopts = ["-L{libdir}", "-Wl,-rpath,{libdir}", "-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu",
                "-lc10", "-Wl,--as-needed"],
)
""".format(libdir = libdir) + _LIBTORCH_ALIAS)

libtorch_configure = repository_rule(
    implementation = _libtorch_configure_impl,
    environ = ["DDLM_LIBTORCH", "DDLM_TORCH_VENV"],
    local = True,
)

# The CUDA build takes LibTorch, and the CUDA runtime and NCCL it was built against,
# from the same venv, once `./setup.sh --cuda` has added the wheel's CUDA dependencies
# (one LibTorch, one cudart and one NCCL per process: the binaries link and load exactly
# the files the wheel's libtorch_cuda.so loads through its own RPATH).
def _libtorch_wheel_configure_impl(ctx):
    venv = ctx.os.environ.get("DDLM_TORCH_VENV", _TORCH_WHEEL_VENV)
    site = _find_site_packages(ctx, venv)
    header = 'package(default_visibility = ["//visibility:public"])\n'
    msg = None
    if ctx.os.environ.get("DDLM_LIBTORCH", "") != "":
        # Both builds compile against @libtorch's headers: they must be the wheel's.
        msg = ("the CUDA build takes LibTorch from the torch wheel; unset DDLM_LIBTORCH " +
               "(it points the build at another LibTorch's headers)")
    elif site == None or not ctx.path(site + "/nvidia/cudnn/lib").exists:
        msg = ("the CUDA build needs the torch wheel with its CUDA libraries in %s: run " % venv +
               "./setup.sh --cuda (or set --repo_env=DDLM_TORCH_VENV to a venv holding them)")
    if msg != None:
        # Only --config=cuda targets depend on this, and they fail saying why.
        ctx.file("BUILD", header + """genrule(
    name = "missing",
    outs = ["missing.h"],
    cmd = "echo '{msg}' >&2; exit 1",
)
cc_library(name = "libs", hdrs = [":missing.h"])
cc_library(name = "cuda_runtime", hdrs = [":missing.h"])
""".format(msg = msg))
        return
    torch = site + "/torch"
    nvidia = site + "/nvidia"
    ctx.symlink(nvidia + "/cu13/include", "cuda_include")
    ctx.symlink(nvidia + "/nccl/include", "nccl_include")

    # Every directory libtorch_cuda.so's RPATH names: the linker resolves its needs
    # there (-rpath-link) and the binaries find the same files at run time (-rpath).
    rpaths = _rpaths([torch + "/lib"] + [
        nvidia + "/" + d + "/lib"
        for d in ["cu13", "nccl", "cudnn", "cusparselt", "nvshmem"]
    ])
    ctx.file("BUILD", header + _WHEEL_LIBS.format(
        torchlib = torch + "/lib",
        rpaths = rpaths,
        libs = ["-ltorch", "-ltorch_cpu", "-ltorch_cuda", "-lc10_cuda", "-lc10"],
    ) + """
# The CUDA runtime and NCCL of the wheel (headers and the very .so files LibTorch loads).
# Only the CUDA-only libraries (//bazel:cuda_library) compile against these headers.
cc_library(
    name = "cuda_runtime",
    hdrs = glob(["cuda_include/**/*.h", "cuda_include/**/*.hpp", "nccl_include/*.h"]),
    includes = ["cuda_include", "nccl_include"],
    linkopts = {rpaths} + [
        "{cu13lib}/libcudart.so.13",
        "{nccllib}/libnccl.so.2",
    ],
)
""".format(rpaths = rpaths, cu13lib = nvidia + "/cu13/lib", nccllib = nvidia + "/nccl/lib"))

libtorch_wheel_configure = repository_rule(
    implementation = _libtorch_wheel_configure_impl,
    environ = ["DDLM_LIBTORCH", "DDLM_TORCH_VENV"],
    local = True,
)
