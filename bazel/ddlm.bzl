"""Build macros shared across ddlm's packages."""

def ddlm_cc_test(name, srcs, deps = [], data = [], size = "small", **kwargs):
    """A GoogleTest cc_test linked with gtest_main and tcmalloc (see @system//:tcmalloc);
    under --config=tsan, with what lets TSan see absl's mutexes instead."""
    native.cc_test(
        name = name,
        srcs = srcs,
        # tcmalloc replaces malloc, as the sanitizers' runtimes do: not both.
        deps = deps + ["@system//:gmock", "@system//:gtest_main"] + select({
            "//bazel:sanitizer": [],
            "//conditions:default": ["@system//:tcmalloc"],
        }) + select({
            "//bazel:tsan": ["//bazel/tsan:absl_sync_annotations"],
            "//conditions:default": [],
        }),
        data = data,
        size = size,
        **kwargs
    )

def ddlm_fuzz_target(name, srcs, deps = [], data = []):
    """A fuzz target (LLVMFuzzerTestOneInput) and its seed corpus, tests/fuzz/corpus/<what>/
    for a target named <what>_fuzzer.

    <name>_test runs the seeds and fixed mutations of them in every build (a GoogleTest,
    in `bazel test //...`); <name> is the libFuzzer binary, built only with
    --config=fuzz (clang, ASan + UBSan): `bazel-bin/tests/fuzz/<name> CORPUS_COPY/`
    (tests/fuzz/run_fuzzers.sh).
    """
    what = name[:-len("_fuzzer")] if name.endswith("_fuzzer") else name
    corpus = native.glob(["corpus/%s/*" % what])
    native.cc_test(
        name = name + "_test",
        srcs = srcs,
        deps = deps + [":fuzz_regression_main"],
        data = data + corpus,
        args = ["tests/fuzz/corpus/%s" % what],
        size = "medium",
    )
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
        data = data,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
    )
