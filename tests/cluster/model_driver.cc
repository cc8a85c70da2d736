// ModelDriver: the sim's dm-raid1 models on the wall clock, each node's models on its
// clogd's test kernel link. See model_driver.h.
#include "tests/cluster/model_driver.h"

#include <linux/dm-log-userspace.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <utility>

#include "logd/socket_link.h"

namespace clogd::cluster_test {

using sim::MirrorModel;
using sim::MirrorState;

namespace {
constexpr SimTime kReconnectEveryUs = 50'000;
constexpr SimTime kRearmRetryUs = 1'000;

uint64_t Word(const std::vector<uint8_t>& payload, size_t index) {
  uint64_t v = 0;
  if (payload.size() >= (index + 1) * 8) std::memcpy(&v, payload.data() + index * 8, 8);
  return v;
}
}  // namespace

struct ModelDriver::Mirror {
  std::unique_ptr<sim::SimLegs> legs;
  std::unique_ptr<sim::DataChecker> checker;
};

struct ModelDriver::Link {
  int fd = -1;
  uint64_t generation = 0;  // bumped at every connect: stale rearms are not answered
  SimTime next_attempt = 0;
};

struct ModelDriver::Node {
  int id = 0;
  bool up = false;
  uint64_t boot = 0;
  std::string socket;
  Link link;
  uint64_t connects = 0;
  std::unique_ptr<sim::NodeKernel> kernel;
  std::vector<std::unique_ptr<MirrorModel>> models;  // per mirror
  std::vector<bool> workload;                        // per mirror
  std::vector<std::set<uint64_t>> writing;           // per mirror: blocks being written
  std::vector<uint64_t> issued, done, ok;            // per mirror
};

ModelDriver::ModelDriver(DriverConfig config)
    : config_(std::move(config)), start_(std::chrono::steady_clock::now()), rng_(config_.seed) {
  for (size_t m = 0; m < config_.mirrors.size(); ++m) {
    auto mirror = std::make_unique<Mirror>();
    mirror->legs =
        std::make_unique<sim::SimLegs>(loop_, rng_, 2, config_.regions, config_.blocks_per_region);
    mirror->checker = std::make_unique<sim::DataChecker>(*mirror->legs);
    mirrors_.push_back(std::move(mirror));
  }
  for (int n = 1; n <= config_.nodes; ++n) {
    auto node = std::make_unique<Node>();
    node->id = n;
    node->workload.assign(mirrors_.size(), false);
    node->writing.resize(mirrors_.size());
    node->issued.assign(mirrors_.size(), 0);
    node->done.assign(mirrors_.size(), 0);
    node->ok.assign(mirrors_.size(), 0);
    nodes_.push_back(std::move(node));
  }
}

ModelDriver::~ModelDriver() {
  for (auto& node : nodes_) {
    if (node->link.fd >= 0) close(node->link.fd);
  }
}

ModelDriver::Node& ModelDriver::node_ref(int node) { return *nodes_.at(size_t(node - 1)); }
const ModelDriver::Node& ModelDriver::node_ref(int node) const {
  return *nodes_.at(size_t(node - 1));
}

SimTime ModelDriver::WallUs() const {
  return static_cast<SimTime>(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - start_)
                                  .count());
}

void ModelDriver::SetSocket(int node, const std::string& path) { node_ref(node).socket = path; }

Status ModelDriver::BootNode(int id, std::chrono::milliseconds bound) {
  Node& node = node_ref(id);
  if (node.up) return Busy("node " + std::to_string(id) + " is up already");
  node.up = true;
  ++node.boot;
  node.kernel = std::make_unique<sim::NodeKernel>();
  node.models.clear();
  node.models.resize(mirrors_.size());
  for (auto& w : node.writing) w.clear();
  node.link.next_attempt = 0;
  if (!RunUntil([&] { return node.link.fd >= 0; }, bound)) {
    return NotFound("node " + std::to_string(id) + ": no clogd accepts the link at " + node.socket +
                    " after " + std::to_string(bound.count()) + " ms");
  }
  for (size_t m = 0; m < mirrors_.size(); ++m) {
    sim::MirrorConfig mc;
    mc.node = id;
    mc.uuid = config_.mirrors[m].uuid;
    mc.luid = 1000 * node.boot + m + 1;
    mc.ctr = config_.mirrors[m].ctr;
    mc.legs = {0, 1};
    mc.integrated_flush = config_.mirrors[m].integrated_flush;
    node.models[m] = std::make_unique<MirrorModel>(
        loop_, rng_, *mirrors_[m]->legs, mc,
        [this, &node, m](const logd::UlogRequest& r) { ToDaemon(node, m, r); },
        mirrors_[m]->checker.get(), node.kernel.get());
    CLOG_RETURN_IF_ERROR(node.models[m]->Start());
    if (node.workload[m]) ScheduleOp(node, m);
  }
  return Status::Ok();
}

void ModelDriver::CrashNode(int id) {
  Node& node = node_ref(id);
  if (!node.up) return;
  node.up = false;
  for (auto& model : node.models) {
    if (model) model->Crash();
  }
  for (auto& w : node.writing) w.clear();
  Disconnect(node, "node crashed");
}

bool ModelDriver::node_up(int node) const { return node_ref(node).up; }

void ModelDriver::SetWorkload(int id, bool on) {
  Node& node = node_ref(id);
  for (size_t m = 0; m < mirrors_.size(); ++m) {
    const bool was = node.workload[m];
    node.workload[m] = on;
    if (on && !was && node.up) ScheduleOp(node, m);
  }
}

void ModelDriver::SetWorkloadAll(bool on) {
  for (auto& node : nodes_) SetWorkload(node->id, on);
}

// --- the link

void ModelDriver::Connect(Node& node) {
  if (node.link.fd >= 0 || node.socket.empty()) return;
  node.link.next_attempt = loop_.Now() + kReconnectEveryUs;
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, node.socket.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return;
  }
  node.link.fd = fd;
  ++node.link.generation;
  ++node.connects;
}

void ModelDriver::Disconnect(Node& node, const std::string&) {
  if (node.link.fd < 0) return;
  close(node.link.fd);
  node.link.fd = -1;
  node.link.next_attempt = loop_.Now() + kReconnectEveryUs;
}

bool ModelDriver::connected(int node) const { return node_ref(node).link.fd >= 0; }
uint64_t ModelDriver::connections(int node) const { return node_ref(node).connects; }

void ModelDriver::ToDaemon(Node& node, size_t m, const logd::UlogRequest& request) {
  RequestRecord record;
  record.node = node.id;
  record.mirror = m;
  record.seq = request.seq;
  record.type = request.type;
  record.payload = request.payload;
  record.sent_us = loop_.Now();
  const int boot_key = node.id * 1'000'000 + static_cast<int>(node.boot);
  // One request at a time per mirror: an unanswered earlier one was given up.
  auto [current, fresh] = waiting_.try_emplace({boot_key, m}, requests_.size());
  if (!fresh) {
    requests_[current->second].abandoned = true;
    current->second = requests_.size();
  }
  by_seq_[{boot_key, request.seq}] = requests_.size();
  requests_.push_back(record);
  if (node.link.fd >= 0) {
    std::vector<uint8_t> frame{logd::kLinkRequest};
    std::vector<uint8_t> body = logd::EncodeRequest(request);
    frame.insert(frame.end(), body.begin(), body.end());
    // Small messages on a local socket: the send buffer holds hundreds of them.
    const ssize_t n = send(node.link.fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(frame.size())) {
      requests_.back().over_link = true;
      return;
    }
    if (n < 0 && errno == EAGAIN) {
      problems_.push_back("node " + std::to_string(node.id) + ": link send buffer full");
    }
    Disconnect(node, "send failed");
  }
  // No listener: the kernel's send fails with -ESRCH at once.
  const uint64_t boot = node.boot;
  loop_.Schedule(0, [this, &node, boot, reply = logd::ReplyTo(request, -ESRCH)] {
    if (node.up && node.boot == boot) OnReply(node, reply, /*send_failed=*/true);
  });
}

void ModelDriver::OnReply(Node& node, const logd::UlogReply& reply, bool send_failed) {
  const int boot_key = node.id * 1'000'000 + static_cast<int>(node.boot);
  auto it = by_seq_.find({boot_key, reply.seq});
  if (it == by_seq_.end() || requests_[it->second].answered) {
    problems_.push_back("node " + std::to_string(node.id) + ": " +
                        (it == by_seq_.end() ? "reply to unknown seq " : "second reply to seq ") +
                        std::to_string(reply.seq));
    return;
  }
  RequestRecord& record = requests_[it->second];
  record.answered = true;
  record.error = reply.error;
  record.answered_us = loop_.Now();
  const size_t m = record.mirror;
  auto current = waiting_.find({boot_key, m});
  if (current != waiting_.end() && current->second == it->second) waiting_.erase(current);
  if (reply.uuid != config_.mirrors[m].uuid) {
    problems_.push_back("node " + std::to_string(node.id) + ": reply to seq " +
                        std::to_string(reply.seq) + " names log " + reply.uuid);
  }
  // A late reply to an abandoned request reaches the model too: it drops it as stale.
  if (!node.models[m]) return;
  if (send_failed) {
    node.models[m]->OnSendFailed(reply.seq, reply.error);
  } else {
    node.models[m]->OnReply(reply);
  }
}

void ModelDriver::ReadLink(Node& node) {
  while (node.link.fd >= 0) {
    std::vector<uint8_t> buf(logd::kLinkMaxMessage + 1);
    const ssize_t n = recv(node.link.fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      Disconnect(node, "clogd closed the link");
      return;
    }
    buf.resize(static_cast<size_t>(n));
    OnMessage(node, buf);
  }
}

void ModelDriver::OnMessage(Node& node, const std::vector<uint8_t>& message) {
  const std::span<const uint8_t> body = std::span<const uint8_t>(message).subspan(1);
  if (message[0] == logd::kLinkReply) {
    auto reply = logd::DecodeReply(body);
    if (!reply.ok()) {
      problems_.push_back("node " + std::to_string(node.id) +
                          ": bad reply frame: " + reply.status().ToString());
      return;
    }
    OnReply(node, *reply);
  } else if (message[0] == logd::kLinkRearm) {
    Rearm(node, std::string(body.begin(), body.end()), node.link.generation);
  } else {
    problems_.push_back("node " + std::to_string(node.id) + ": unknown link message kind " +
                        std::to_string(message[0]));
  }
}

// What the rearm hook does on a real node (dmsetup suspend --noflush + resume): waits for
// a suspend already under way, then runs a full cycle; a table that is not running needs
// none.
void ModelDriver::Rearm(Node& node, const std::string& uuid, uint64_t link_generation) {
  size_t m = 0;
  while (m < mirrors_.size() && config_.mirrors[m].uuid != uuid) ++m;
  MirrorModel* model = m < mirrors_.size() && node.up ? node.models[m].get() : nullptr;
  if (model && model->state() == MirrorState::kSuspending) {
    loop_.Schedule(kRearmRetryUs, [this, &node, uuid, link_generation, boot = node.boot] {
      if (node.up && node.boot == boot) Rearm(node, uuid, link_generation);
    });
    return;
  }
  if (model && model->state() == MirrorState::kRunning &&
      model
          ->RearmHint(
              [this, &node, uuid, link_generation] { SendRearmDone(node, uuid, link_generation); })
          .ok()) {
    return;
  }
  SendRearmDone(node, uuid, link_generation);
}

void ModelDriver::SendRearmDone(Node& node, const std::string& uuid, uint64_t link_generation) {
  if (node.link.fd < 0 || node.link.generation != link_generation) return;  // that clogd died
  std::vector<uint8_t> frame{logd::kLinkRearmDone};
  frame.insert(frame.end(), uuid.begin(), uuid.end());
  if (send(node.link.fd, frame.data(), frame.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(frame.size())) {
    Disconnect(node, "send failed");
  }
}

// --- running

void ModelDriver::PumpLinks() {
  for (auto& node : nodes_) {
    if (node->up && node->link.fd < 0 && loop_.Now() >= node->link.next_attempt) Connect(*node);
  }
}

void ModelDriver::Step(std::chrono::milliseconds max_wait) {
  loop_.RunUntil(WallUs());
  PumpLinks();
  std::vector<pollfd> fds;
  std::vector<Node*> owners;
  for (auto& node : nodes_) {
    if (node->link.fd >= 0) {
      fds.push_back({node->link.fd, POLLIN, 0});
      owners.push_back(node.get());
    }
  }
  SimTime wait_us = static_cast<SimTime>(max_wait.count()) * 1000;
  const SimTime now = WallUs();
  if (!loop_.Idle()) {
    const SimTime next = loop_.NextTime();
    wait_us = std::min(wait_us, next > now ? next - now : 0);
  }
  wait_us = std::min<SimTime>(wait_us, kReconnectEveryUs);
  // Round up: waking before the event is due only costs another turn.
  const int timeout_ms = static_cast<int>((wait_us + 999) / 1000);
  if (poll(fds.data(), fds.size(), timeout_ms) > 0) {
    loop_.RunUntil(WallUs());
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents != 0) ReadLink(*owners[i]);
    }
  }
  loop_.RunUntil(WallUs());
}

void ModelDriver::RunFor(std::chrono::milliseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
    Step(std::chrono::duration_cast<std::chrono::milliseconds>(end -
                                                               std::chrono::steady_clock::now()));
  }
}

bool ModelDriver::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds bound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    Step(std::chrono::milliseconds(20));
  }
  return true;
}

// --- workload

uint64_t ModelDriver::BlockOf(int node, uint64_t region) const {
  const auto nodes = static_cast<uint64_t>(config_.nodes);
  const uint64_t first = region * config_.blocks_per_region;
  return first + (nodes - (first % nodes) + uint64_t(node - 1)) % nodes;
}

bool ModelDriver::WritingIn(int id, size_t m, uint64_t region) {
  for (uint64_t block : node_ref(id).writing[m]) {
    if (block / config_.blocks_per_region == region) return true;
  }
  return false;
}

void ModelDriver::ScheduleOp(Node& node, size_t m) {
  const uint64_t boot = node.boot;
  loop_.Schedule(rng_.Range(config_.op_min_us, config_.op_max_us), [this, &node, m, boot] {
    if (!node.up || node.boot != boot || !node.workload[m]) return;
    Op(node, m);
    ScheduleOp(node, m);
  });
}

void ModelDriver::Op(Node& node, size_t m) {
  MirrorModel* model = node.models[m].get();
  if (!model || model->state() != MirrorState::kRunning) return;
  const sim::SimLegs& legs = *mirrors_[m]->legs;
  const uint64_t nodes = static_cast<uint64_t>(config_.nodes);
  const uint64_t per_node = legs.nr_blocks() / nodes;
  // A hot set: most operations go to a few regions, so marks stay in place and overlap.
  const uint64_t pick =
      rng_.OneIn(4) ? rng_.Below(per_node) : rng_.Below(std::min<uint64_t>(per_node, 8));
  const uint64_t block = pick * nodes + uint64_t(node.id - 1);
  if (rng_.OneIn(5)) {
    model->Read(block, [](Status, uint64_t) {});
    return;
  }
  if (node.writing[m].size() >= config_.max_writes || node.writing[m].contains(block)) return;
  Write(node.id, m, block, {});
}

void ModelDriver::Write(int id, size_t m, uint64_t block,
                        std::function<void(Status, SimTime)> done) {
  Node& node = node_ref(id);
  MirrorModel* model = node.models[m].get();
  if (!node.up || !model) {
    if (done) done(NotFound("node " + std::to_string(id) + " is down"), loop_.Now());
    return;
  }
  node.writing[m].insert(block);
  ++node.issued[m];
  const uint64_t boot = node.boot;
  model->Write(block, ++next_value_,
               [this, &node, m, block, boot, done = std::move(done)](Status status) {
                 if (node.boot != boot) return;
                 node.writing[m].erase(block);
                 ++node.done[m];
                 if (status.ok()) ++node.ok[m];
                 if (done) done(status, loop_.Now());
               });
}

// --- observations

sim::MirrorModel* ModelDriver::model(int node, size_t mirror) {
  Node& n = node_ref(node);
  return mirror < n.models.size() ? n.models[mirror].get() : nullptr;
}

sim::SimLegs& ModelDriver::legs(size_t mirror) { return *mirrors_[mirror]->legs; }
sim::DataChecker& ModelDriver::checker(size_t mirror) { return *mirrors_[mirror]->checker; }

size_t ModelDriver::Outstanding(int node) const {
  size_t count = 0;
  for (size_t m = 0; m < mirrors_.size(); ++m) count += Outstanding(node, m);
  return count;
}

size_t ModelDriver::Outstanding(int node, size_t mirror) const {
  const int boot_key = node * 1'000'000 + static_cast<int>(node_ref(node).boot);
  return waiting_.contains({boot_key, mirror}) ? 1 : 0;
}

std::set<uint64_t> ModelDriver::RecoveredSince(size_t mirror, SimTime since, int node) const {
  std::set<uint64_t> out;
  for (const RequestRecord& r : requests_) {
    if (r.mirror != mirror || r.sent_us < since || r.type != DM_ULOG_SET_REGION_SYNC) continue;
    if (node != 0 && r.node != node) continue;
    if (!r.answered || r.error != 0) continue;
    if (Word(r.payload, 1) == 1) out.insert(Word(r.payload, 0));
  }
  return out;
}

uint64_t ModelDriver::writes_issued(int node, size_t m) const { return node_ref(node).issued[m]; }
uint64_t ModelDriver::writes_done(int node, size_t m) const { return node_ref(node).done[m]; }
uint64_t ModelDriver::writes_ok(int node, size_t m) const { return node_ref(node).ok[m]; }
size_t ModelDriver::writes_in_flight(int node, size_t m) const {
  return node_ref(node).writing[m].size();
}

bool ModelDriver::Quiet(int node, size_t m) {
  MirrorModel* k = model(node, m);
  // A removed mirror (Stop done) is as quiet as a running one with nothing in flight.
  const bool live =
      k && (k->state() == MirrorState::kRunning || k->state() == MirrorState::kStopped);
  return live && Outstanding(node, m) == 0 && k->bios_in_target() == 0 &&
         writes_in_flight(node, m) == 0 && !k->recovering();
}

bool ModelDriver::AllQuiet() {
  for (auto& node : nodes_) {
    if (!node->up) continue;
    for (size_t m = 0; m < mirrors_.size(); ++m) {
      if (!Quiet(node->id, m)) return false;
    }
  }
  return true;
}

std::vector<std::string> ModelDriver::Problems() const {
  std::vector<std::string> out = problems_;
  for (size_t m = 0; m < mirrors_.size(); ++m) {
    for (const auto& v : mirrors_[m]->checker->violations()) {
      out.push_back(config_.mirrors[m].uuid + ": " + v);
    }
  }
  for (const auto& node : nodes_) {
    for (const auto& model : node->models) {
      if (!model) continue;
      for (const auto& e : model->protocol_errors()) {
        out.push_back(model->config().uuid + ": " + e);
      }
    }
  }
  return out;
}

std::vector<std::string> ModelDriver::CheckAckedWrites() const {
  std::vector<std::string> out;
  for (size_t m = 0; m < mirrors_.size(); ++m) {
    for (auto& v : mirrors_[m]->checker->CheckAckedWrites()) {
      out.push_back(config_.mirrors[m].uuid + ": " + v);
    }
  }
  return out;
}

std::vector<std::string> ModelDriver::CheckQuiescent() const {
  std::vector<std::string> out;
  for (size_t m = 0; m < mirrors_.size(); ++m) {
    for (auto& v : mirrors_[m]->checker->CheckQuiescent()) {
      out.push_back(config_.mirrors[m].uuid + ": " + v);
    }
  }
  return out;
}

std::string ModelDriver::Summary() const {
  std::ostringstream out;
  for (const auto& node : nodes_) {
    for (size_t m = 0; m < mirrors_.size(); ++m) {
      out << "node " << node->id << " " << config_.mirrors[m].uuid << ": writes " << node->ok[m]
          << "/" << node->issued[m] << " ok";
      const MirrorModel* k = m < node->models.size() ? node->models[m].get() : nullptr;
      if (k) {
        const sim::MirrorStats& s = k->stats();
        out << ", requests " << s.requests_sent << ", max latency "
            << s.max_request_latency_us / 1000 << " ms, -ESRCH " << s.esrch_events << ", timeouts "
            << s.timeouts << ", recovered " << s.regions_recovered << ", state "
            << static_cast<int>(k->state()) << ", bios in target " << k->bios_in_target()
            << ", writes in flight " << node->writing[m].size()
            << (k->recovering() ? ", recovering" : "");
      }
      const int boot_key = node->id * 1'000'000 + static_cast<int>(node->boot);
      if (auto w = waiting_.find({boot_key, m}); w != waiting_.end()) {
        const RequestRecord& r = requests_[w->second];
        out << "\n  waiting: " << logd::RequestTypeName(r.type) << " seq " << r.seq << " sent "
            << (loop_.Now() - r.sent_us) / 1000 << " ms ago" << (r.over_link ? "" : " (no link)");
      }
      out << (node->up ? "" : " (down)") << "\n";
    }
  }
  return out.str();
}

}  // namespace clogd::cluster_test
