#include "coordinator/rpc/rpc_stats_interceptor.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"

namespace ddlm {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcStatsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcStatsInterceptor(RpcStats* stats, std::string method)
      : stats_(stats), method_(std::move(method)), start_(absl::Now()) {}

  ~RpcStatsInterceptor() override {
    if (!recorded_) stats_->Record(method_, "CANCELLED", absl::Now() - start_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) && !recorded_) {
      const grpc::Status status = methods->GetSendStatus();
      stats_->Record(method_, absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                     absl::Now() - start_);
      recorded_ = true;
    }
    methods->Proceed();
  }

 private:
  RpcStats* const stats_;
  const std::string method_;
  const absl::Time start_;
  bool recorded_ = false;
};

}  // namespace

grpc::experimental::Interceptor* RpcStatsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcStatsInterceptor(stats_, info->method() != nullptr ? info->method() : "unknown");
}

}  // namespace ddlm
