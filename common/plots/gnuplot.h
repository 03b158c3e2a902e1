#ifndef DDLM_COMMON_PLOTS_GNUPLOT_H_
#define DDLM_COMMON_PLOTS_GNUPLOT_H_

// What ddlm's plots (`ddlm plot`'s training curves, heatmaps) share around gnuplot
// (Debian's gnuplot-nox, its pngcairo terminal): quoting text for a gnuplot program, and
// running a program on its data file into a PNG.
//
// Threading: free functions.

#include <string>

#include "absl/status/status.h"

namespace ddlm {

// A gnuplot string literal for any text: single quotes, in which gnuplot substitutes
// nothing (inside double quotes it would run `backquoted` commands, and a job's name or
// a token is anyone's text), a quote doubled, line breaks as spaces.
std::string GnuplotQuoted(const std::string& s);

// The data path a program given to RunGnuplot names (as GnuplotQuoted(kGnuplotDataPath))
// where it reads its data: RunGnuplot writes the data to a temporary file, whose path is
// only known then, and puts that file's quoted path in its place. (Only a whole quoted
// literal is replaced, and by another, so a user's text that happens to say this stays
// a literal: gnuplot draws it, never runs it.)
inline constexpr char kGnuplotDataPath[] = "@ddlm-gnuplot-data@";

// Runs `program` with `gnuplot` (found on PATH, or a path) on `data`, both written to a
// temporary directory that is removed afterwards; the program writes the PNG
// `png_path`. The error names what went wrong: FAILED_PRECONDITION when gnuplot cannot
// be run (install gnuplot-nox), INTERNAL with gnuplot's own message when it fails, or
// when it wrote no PNG to `png_path`.
absl::Status RunGnuplot(const std::string& program, const std::string& data, const std::string& png_path,
                        const std::string& gnuplot = "gnuplot");

}  // namespace ddlm

#endif  // DDLM_COMMON_PLOTS_GNUPLOT_H_
