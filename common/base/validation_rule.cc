#include "common/base/validation_rule.h"

namespace ddlm {

ValidationOutcome DecideAfterValidation(double loss, std::optional<double> best_so_far, double lr, double anneal) {
  if (!best_so_far || loss < *best_so_far) return {true, lr};
  return {false, lr / anneal};
}

}  // namespace ddlm
