#include "common/base/model_size.h"

#include <algorithm>
#include <cstdint>

namespace ddlm {

namespace {

int64_t Clamp(__int128 n) { return n > INT64_MAX ? INT64_MAX : n < 0 ? 0 : static_cast<int64_t>(n); }

}  // namespace

int64_t ParameterCount(const ModelConfig& c, int64_t ntoken) {
  // In 128 bits, so that no config overflows (a valid one stays far below 2^63).
  using Big = __int128;
  const Big v = ntoken, e = c.emsize(), h = c.nhid(), layers = std::min<Big>(c.nlayers(), 1 << 20);
  if (c.type() == TRANSFORMER) {
    // Per layer: attention in/out projections, two feed-forward linears, two norms.
    const Big layer = (3 * e * e + 3 * e) + (e * e + e) + (h * e + h) + (e * h + e) + 2 * e + 2 * e;
    return Clamp(v * e + layers * layer + 2 * e /* final norm */ + e * v + v /* decoder */);
  }
  const Big gates = c.type() == LSTM ? 4 : c.type() == GRU ? 3 : 1;
  // The first layer reads the embedding, the others the layer below.
  const Big rnn =
      layers < 1 ? 0 : (gates * h * (e + h) + 2 * gates * h) + (layers - 1) * (gates * h * (h + h) + 2 * gates * h);
  return Clamp(v * e + rnn + (c.tied() ? 0 : v * h) + v);
}

}  // namespace ddlm
