// CpgCluster: forwards DaemonCluster to CpgTransport.
#include "logd/cpg_cluster.h"

#include "logd/cpg_transport.h"

namespace clogd::logd {

namespace {

class CpgCluster : public DaemonCluster {
 public:
  CpgCluster(LogFn log, FdWatch watch) : cpg_(std::move(log), std::move(watch)) {}
  Status Connect() override { return cpg_.Connect(); }
  bool connected() const override { return cpg_.connected(); }
  void Dispatch(int fd) override { cpg_.Dispatch(fd); }
  NodeId LocalNode() const override { return cpg_.LocalNode(); }
  Result<uint32_t> ExpectedVotes() const override { return cpg_.ExpectedVotes(); }
  ClusterTransport& transport() override { return cpg_; }

 private:
  CpgTransport cpg_;
};

}  // namespace

std::unique_ptr<DaemonCluster> MakeCpgCluster(LogFn log, FdWatch watch) {
  return std::make_unique<CpgCluster>(std::move(log), std::move(watch));
}

}  // namespace clogd::logd
