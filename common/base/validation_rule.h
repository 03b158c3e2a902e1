#ifndef DDLM_COMMON_BASE_VALIDATION_RULE_H_
#define DDLM_COMMON_BASE_VALIDATION_RULE_H_

// What happens after an epoch's validation, decided in one place: by the coordinator
// for a job (every rank applies its decision: Trainer::ApplyValidation), and locally by
// ddlm_train (LocalValidationArbiter, worker/epoch_loop.h). word_language_model's
// rule: keep the model if the loss improved on the best so far (or there is none),
// else divide the learning rate by `anneal`.

#include <optional>

namespace ddlm {

struct ValidationOutcome {
  bool best = false;
  double lr = 0;  // The learning rate from now on.
};

ValidationOutcome DecideAfterValidation(double loss, std::optional<double> best_so_far, double lr, double anneal);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_VALIDATION_RULE_H_
