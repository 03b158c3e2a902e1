"""Build macros shared across ddlm's packages."""

def ddlm_cc_test(name, srcs, deps = [], data = [], size = "small", **kwargs):
    """A GoogleTest cc_test linked with gtest_main and tcmalloc (see @system//:tcmalloc)."""
    native.cc_test(
        name = name,
        srcs = srcs,
        deps = deps + ["@system//:gmock", "@system//:gtest_main", "@system//:tcmalloc"],
        data = data,
        size = size,
        **kwargs
    )
