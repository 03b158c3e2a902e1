#include "common/base/model_size.h"

namespace ddlm {

int64_t ParameterCount(const ModelConfig& c, int64_t ntoken) {
  const int64_t v = ntoken, e = c.emsize(), h = c.nhid(), layers = c.nlayers();
  if (c.type() == TRANSFORMER) {
    // Per layer: attention in/out projections, two feed-forward linears, two norms.
    const int64_t layer = (3 * e * e + 3 * e) + (e * e + e) + (h * e + h) + (e * h + e) + 2 * e + 2 * e;
    return v * e + layers * layer + 2 * e /* final norm */ + e * v + v /* decoder */;
  }
  const int64_t gates = c.type() == LSTM ? 4 : c.type() == GRU ? 3 : 1;
  int64_t rnn = 0;
  for (int64_t l = 0; l < layers; ++l) {
    const int64_t in = l == 0 ? e : h;
    rnn += gates * h * (in + h) + 2 * gates * h;
  }
  return v * e + rnn + (c.tied() ? 0 : v * h) + v;
}

}  // namespace ddlm
