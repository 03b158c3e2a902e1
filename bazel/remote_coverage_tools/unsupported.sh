#!/bin/sh
echo "ddlm: coverage tools are not available in the offline Bazel set-up" >&2
exit 1
