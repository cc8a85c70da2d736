// The single-node log engine: serves the kernel's dirty-log requests for every log this
// node has, each log's state kept durably on its log device (disk types: this node's
// marks are in its slot before FLUSH returns) or in memory (core types). Every request
// gets exactly one reply through the ReplySink; unknown types get -EINVAL.
// In this engine a clustered-* log is served as if this node were the whole cluster.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "logd/cluster_log.h"
#include "logd/cluster_transport.h"
#include "logd/local_log.h"
#include "logd/ulog_codec.h"
#include "region/block_device.h"

namespace clogd::logd {

class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void Reply(const UlogReply& reply) = 0;
};

// Opens the log device named in a CTR string (a path or "major:minor").
using DeviceOpener =
    std::function<Result<std::unique_ptr<region::BlockDevice>>(const std::string& device)>;

class LogEngine {
 public:
  // With a cluster transport, clustered-core/-disk logs are served cluster-wide (one
  // ClusterLog per uuid, shared by the kernel's instances of it during a table reload);
  // without one they are served as if this node were the whole cluster.
  LogEngine(DeviceOpener opener, EngineOptions options, ReplySink& sink,
            ClusterTransport* cluster = nullptr);

  // Serves one request; its reply goes to the sink.
  void Submit(const UlogRequest& request);
  // Decodes and serves a raw frame. A frame with a readable header but bad content gets
  // an -EINVAL reply; one too short to address a reply is dropped with a log line.
  void SubmitFrame(std::span<const uint8_t> frame);

  size_t LogCount() const { return logs_.size() + cluster_luids_.size(); }
  const ClusterLog* FindCluster(const std::string& uuid) const;
  ClusterLog* FindCluster(const std::string& uuid);
  std::vector<const ClusterLog*> ClusterLogs() const;
  const LocalLog* Find(uint64_t luid) const;
  std::vector<const LocalLog*> Logs() const;

 private:
  UlogReply Construct(const UlogRequest& request);
  UlogReply Destruct(const UlogRequest& request);
  const LocalLog* SiblingOf(const LocalLog& log) const;
  void Log(Severity s, const std::string& message) const;

  DeviceOpener opener_;
  EngineOptions options_;
  ReplySink& sink_;
  std::map<uint64_t, std::unique_ptr<LocalLog>> logs_;  // by luid
  ClusterTransport* cluster_ = nullptr;
  std::map<std::string, std::unique_ptr<ClusterLog>> clusters_;  // by uuid
  std::map<uint64_t, std::string> cluster_luids_;                // luid -> uuid
};

}  // namespace clogd::logd
