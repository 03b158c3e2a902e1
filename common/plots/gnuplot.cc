#include "common/plots/gnuplot.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/base/file_io.h"
#include "common/base/subprocess.h"

namespace ddlm {
namespace {

// `name` as a shell finds it on PATH (execv takes a path), or `name` itself.
std::string OnPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

absl::Status Run(const std::string& program_path, const std::string& png_path, const std::string& gnuplot) {
  std::string output;
  const int code = RunBinary({OnPath(gnuplot), program_path}, &output);
  if (code == 127) {  // The child could not exec it.
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ", gnuplot, " (install Debian's gnuplot-nox: ./setup.sh)"));
  }
  if (code != 0) return absl::InternalError(absl::StrCat(gnuplot, " failed (exit ", code, "): ", output));
  // gnuplot only warns about some mistakes (a plot with no points) and exits 0; a caller
  // told OK must find its PNG.
  struct stat st;
  if (::stat(png_path.c_str(), &st) != 0 || st.st_size == 0) {
    return absl::InternalError(absl::StrCat(gnuplot, " wrote no PNG to ", png_path, ": ", output));
  }
  return absl::OkStatus();
}

}  // namespace

std::string GnuplotQuoted(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "''"}, {"\n", " "}, {"\r", " "}}), "'");
}

absl::Status RunGnuplot(const std::string& program, const std::string& data, const std::string& png_path,
                        const std::string& gnuplot) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/ddlm-plot-XXXXXX");
  if (::mkdtemp(dir.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot make a temporary directory ", dir, ": ", std::strerror(errno)));
  }
  const std::string data_path = dir + "/plot.dat";
  const std::string program_path = dir + "/plot.gp";
  absl::Status status = WriteFileAtomically(data_path, data);
  if (status.ok()) {
    status = WriteFileAtomically(
        program_path, absl::StrReplaceAll(program, {{GnuplotQuoted(kGnuplotDataPath), GnuplotQuoted(data_path)}}));
  }
  if (status.ok()) status = Run(program_path, png_path, gnuplot);
  (void)RemoveTree(dir);
  return status;
}

}  // namespace ddlm
