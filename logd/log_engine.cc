// Routes kernel requests to logs by luid, builds logs at CTR and tears them down at DTR.
// Requests for a log this daemon does not know (it restarted) are answered -ESRCH: the
// kernel then re-sends CTR and RESUME and retries, which is how a restarted daemon gets
// its logs back.
#include "logd/log_engine.h"

#include <linux/dm-log-userspace.h>

#include <algorithm>
#include <cerrno>

namespace clogd::logd {

namespace {

// Requests that need the log's state loaded; the kernel may send some before RESUME.
bool NeedsState(uint32_t type) {
  switch (type) {
    case DM_ULOG_IS_CLEAN:
    case DM_ULOG_IN_SYNC:
    case DM_ULOG_FLUSH:
    case DM_ULOG_MARK_REGION:
    case DM_ULOG_CLEAR_REGION:
    case DM_ULOG_GET_RESYNC_WORK:
    case DM_ULOG_SET_REGION_SYNC:
    case DM_ULOG_GET_SYNC_COUNT:
    case DM_ULOG_IS_REMOTE_RECOVERING:
    case DM_ULOG_RESUME:
      return true;
    default:
      return false;
  }
}

// Requests the kernel sends through its retrying path, which turns -ESRCH into
// "re-send CTR and RESUME, then retry".
bool KernelRetriesOnEsrch(uint32_t type) { return NeedsState(type) && type != DM_ULOG_RESUME; }

}  // namespace

LogEngine::LogEngine(DeviceOpener opener, EngineOptions options, ReplySink& sink,
                     ClusterTransport* cluster)
    : opener_(std::move(opener)), options_(std::move(options)), sink_(sink), cluster_(cluster) {}

const ClusterLog* LogEngine::FindCluster(const std::string& uuid) const {
  auto it = clusters_.find(uuid);
  return it == clusters_.end() ? nullptr : it->second.get();
}

ClusterLog* LogEngine::FindCluster(const std::string& uuid) {
  auto it = clusters_.find(uuid);
  return it == clusters_.end() ? nullptr : it->second.get();
}

std::vector<const ClusterLog*> LogEngine::ClusterLogs() const {
  std::vector<const ClusterLog*> out;
  for (const auto& [uuid, log] : clusters_) out.push_back(log.get());
  return out;
}

void LogEngine::Log(Severity s, const std::string& message) const {
  if (options_.log) options_.log(s, message);
}

const LocalLog* LogEngine::Find(uint64_t luid) const {
  auto it = logs_.find(luid);
  return it == logs_.end() ? nullptr : it->second.get();
}

std::vector<const LocalLog*> LogEngine::Logs() const {
  std::vector<const LocalLog*> out;
  for (const auto& [luid, log] : logs_) out.push_back(log.get());
  return out;
}

const LocalLog* LogEngine::SiblingOf(const LocalLog& log) const {
  for (const auto& [luid, other] : logs_) {
    if (other.get() != &log && other->uuid() == log.uuid() && other->loaded()) {
      return other.get();
    }
  }
  return nullptr;
}

UlogReply LogEngine::Construct(const UlogRequest& request) {
  UlogReply reply = ReplyTo(request);
  auto fail = [&](const Status& s) {
    Log(Severity::kError, "CTR of log " + request.uuid + " refused: " + s.ToString());
    reply.error = s.ToErrno();
    return reply;
  };
  if (request.uuid.empty()) return fail(InvalidArgument("CTR: empty uuid"));
  auto text = DecodeCtrPayload(request);
  if (!text.ok()) return fail(text.status());
  auto args = ParseCtrString(*text);
  if (!args.ok()) return fail(args.status());
  // A disk log's CTR is answered with its device's name, which the kernel opens. Not when the
  // kernel re-sends CTR after -ESRCH (the string then ends in its NUL): that CTR has no
  // reply buffer, a name in the answer is -ENOSPC, and the kernel would re-send forever.
  const bool resent_after_esrch = !request.payload.empty() && request.payload.back() == 0;
  auto name_device = [&] {
    if (IsDiskLog(args->type) && !resent_after_esrch) reply.payload = StringPayload(args->device);
  };

  if (cluster_ && IsClusteredLog(args->type)) {
    if (auto it = cluster_luids_.find(request.luid); it != cluster_luids_.end()) {
      if (it->second != request.uuid) {
        return fail(InvalidArgument("CTR: luid " + std::to_string(request.luid) +
                                    " already serves log " + it->second));
      }
    } else if (auto c = clusters_.find(request.uuid); c != clusters_.end()) {
      // Another table of the same log (a reload): it shares the cluster state.
      if (c->second->args().ToArgString() != args->ToArgString()) {
        return fail(InvalidArgument("CTR: log " + request.uuid + " is active with '" +
                                    c->second->args().ToArgString() + "', not '" +
                                    args->ToArgString() + "'"));
      }
      cluster_luids_[request.luid] = request.uuid;
    } else {
      std::unique_ptr<region::BlockDevice> device;
      if (IsDiskLog(args->type)) {
        auto opened = opener_(args->device);
        if (!opened.ok()) return fail(opened.status());
        device = std::move(opened).value();
      }
      auto log = std::make_unique<ClusterLog>(request.uuid, *args, std::move(device), options_,
                                              *cluster_, sink_);
      if (Status s = log->Start(); !s.ok()) return fail(s);
      clusters_.emplace(request.uuid, std::move(log));
      cluster_luids_[request.luid] = request.uuid;
    }
    name_device();
    return reply;
  }
  if (auto it = logs_.find(request.luid); it != logs_.end()) {
    // The kernel re-sends CTR after losing contact; the same arguments are fine.
    if (it->second->uuid() == request.uuid &&
        it->second->args().ToArgString() == args->ToArgString()) {
      name_device();
      return reply;
    }
    return fail(InvalidArgument("CTR: luid " + std::to_string(request.luid) +
                                " already serves log " + it->second->uuid() +
                                " with other arguments"));
  }

  std::unique_ptr<region::BlockDevice> device;
  if (IsDiskLog(args->type)) {
    auto opened = opener_(args->device);
    if (!opened.ok()) return fail(opened.status());
    device = std::move(opened).value();
  }
  auto log =
      std::make_unique<LocalLog>(request.uuid, request.luid, *args, std::move(device), options_);
  Status s = log->OpenDevice();
  if (!s.ok()) return fail(s);
  Log(Severity::kInfo, "log " + request.uuid + ": constructed " + args->ToArgString() + " (" +
                           std::to_string(args->RegionCount()) + " regions)");
  name_device();
  logs_.emplace(request.luid, std::move(log));
  return reply;
}

UlogReply LogEngine::Destruct(const UlogRequest& request) {
  UlogReply reply = ReplyTo(request);
  if (auto c = cluster_luids_.find(request.luid); c != cluster_luids_.end()) {
    const std::string uuid = c->second;
    cluster_luids_.erase(c);
    const bool others = std::any_of(cluster_luids_.begin(), cluster_luids_.end(),
                                    [&](const auto& e) { return e.second == uuid; });
    if (!others) {
      clusters_[uuid]->Stop();
      clusters_.erase(uuid);
    }
    return reply;
  }
  auto it = logs_.find(request.luid);
  if (it == logs_.end()) return reply;  // nothing to destroy: already gone
  LocalLog& log = *it->second;
  const bool sibling_lives = SiblingOf(log) != nullptr;
  Status s = log.Destroy(sibling_lives);
  if (!s.ok()) {
    // The kernel ignores DTR errors; say it, the log is gone either way.
    Log(Severity::kError, "log " + log.uuid() + ": clean shutdown failed: " + s.ToString());
  }
  logs_.erase(it);
  return reply;
}

void LogEngine::Submit(const UlogRequest& request) {
  if (request.type == DM_ULOG_CTR) {
    sink_.Reply(Construct(request));
    return;
  }
  if (request.type == DM_ULOG_DTR) {
    sink_.Reply(Destruct(request));
    return;
  }
  if (auto c = cluster_luids_.find(request.luid);
      c != cluster_luids_.end() && c->second == request.uuid) {
    clusters_[c->second]->Submit(request);
    return;
  }
  auto it = logs_.find(request.luid);
  if (it == logs_.end() || it->second->uuid() != request.uuid) {
    UlogReply reply =
        KernelRetriesOnEsrch(request.type) ? EsrchReplyTo(request) : ReplyTo(request, -EINVAL);
    Log(Severity::kWarning, RequestTypeName(request.type) + " for unknown log " + request.uuid +
                                " (luid " + std::to_string(request.luid) + ")");
    sink_.Reply(reply);
    return;
  }
  LocalLog& log = *it->second;
  if (!log.loaded() && NeedsState(request.type)) {
    Status s = log.Load(SiblingOf(log));
    if (!s.ok()) {
      Log(Severity::kError, "log " + log.uuid() + ": load failed: " + s.ToString());
      sink_.Reply(ReplyTo(request, s.ToErrno()));
      return;
    }
  }
  sink_.Reply(log.Handle(request));
}

void LogEngine::SubmitFrame(std::span<const uint8_t> frame) {
  auto request = DecodeRequest(frame);
  if (request.ok()) {
    Submit(*request);
    return;
  }
  // A readable header gets an answer so the kernel does not wait and retry forever.
  std::optional<UlogReply> reply = ErrorReplyForFrame(frame, -EINVAL);
  if (!reply) {
    Log(Severity::kError,
        "dropped a kernel frame that cannot be answered: " + request.status().ToString());
    return;
  }
  Log(Severity::kError, "refused kernel request seq " + std::to_string(reply->seq) + ": " +
                            request.status().ToString());
  sink_.Reply(*reply);
}

}  // namespace clogd::logd
