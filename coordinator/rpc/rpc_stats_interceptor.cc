#include "coordinator/rpc/rpc_stats_interceptor.h"

#include "absl/time/clock.h"

namespace ddlm {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcStatsInterceptor : public grpc::experimental::Interceptor {
 public:
  // `method` is gRPC's own name of a registered method, which outlives every call.
  RpcStatsInterceptor(RpcStats* stats, const char* method) : stats_(stats), method_(method), start_(absl::Now()) {}

  ~RpcStatsInterceptor() override {
    if (!recorded_) stats_->Record(method_, grpc::StatusCode::CANCELLED, absl::Now() - start_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) && !recorded_) {
      const grpc::Status status = methods->GetSendStatus();
      stats_->Record(method_, status.error_code(), absl::Now() - start_);
      recorded_ = true;
    }
    methods->Proceed();
  }

 private:
  RpcStats* const stats_;
  const char* const method_;
  const absl::Time start_;
  bool recorded_ = false;
};

}  // namespace

grpc::experimental::Interceptor* RpcStatsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcStatsInterceptor(stats_, info->method() != nullptr ? info->method() : "unknown");
}

}  // namespace ddlm
