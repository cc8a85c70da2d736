// A minimal in-process cluster for driving clustered logs in unit tests: one queue of
// joins, leaves and multicasts run in order, so every member sees the same deliveries and
// membership changes in the same order (total order and virtual synchrony by construction).
// Timing and faults are the simulator's job (tests/sim); this only has a crash.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "logd/cluster_transport.h"

namespace clogd::logd::testing {

class FakeCluster {
 public:
  class Transport : public ClusterTransport {
   public:
    Transport(FakeCluster& c, NodeId n) : c_(c), n_(n) {}
    NodeId LocalNode() const override { return n_; }
    Status Join(const std::string& group, ClusterHandler* h) override {
      c_.queue_.push_back([c = &c_, n = n_, group, h] { c->DoJoin(group, n, h); });
      return Status::Ok();
    }
    Status Leave(const std::string& group) override {
      c_.queue_.push_back([c = &c_, n = n_, group] { c->DoLeave(group, n); });
      return Status::Ok();
    }
    Status Multicast(const std::string& group, std::span<const uint8_t> m) override {
      std::vector<uint8_t> copy(m.begin(), m.end());
      ++c_.multicasts_;
      c_.queue_.push_back([c = &c_, n = n_, group, copy] { c->DoDeliver(group, n, copy); });
      return Status::Ok();
    }

   private:
    FakeCluster& c_;
    NodeId n_;
  };

  // Runs the next queued event; false if none was left.
  bool RunOne() {
    if (queue_.empty()) return false;
    auto fn = std::move(queue_.front());
    queue_.pop_front();
    fn();
    return true;
  }
  // Takes the last queued event out (a message still on its way), to be put back later with
  // Requeue: what was queued meanwhile comes first.
  std::function<void()> TakeLast() {
    auto fn = std::move(queue_.back());
    queue_.pop_back();
    return fn;
  }
  void Requeue(std::function<void()> fn) { queue_.push_back(std::move(fn)); }

  // Runs queued events until none is left.
  void Run() {
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
  }
  // The node vanishes from every group: no more deliveries to it, the others see it leave
  // (why: the node went down, or only its process did).
  void Crash(NodeId n, Membership::LeaveReason why = Membership::LeaveReason::kNodeDown) {
    for (auto& [group, members] : groups_) {
      for (size_t i = 0; i < members.size(); ++i) {
        if (members[i].first == n) {
          members.erase(members.begin() + static_cast<std::ptrdiff_t>(i));
          Change(group, {}, {n}, why);
          break;
        }
      }
    }
  }

  // The size of everybody's corosync ring (Membership::ring_nodes; 0, the default: not
  // said). A change of it reaches every group as a change naming nobody, as corosync's
  // totem confchg does.
  void SetRing(uint32_t nodes) {
    if (nodes == ring_nodes_) return;
    ring_nodes_ = nodes;
    for (auto& [group, members] : groups_) {
      if (!members.empty()) Change(group, {}, {});
    }
  }

  // Multicasts sent so far (a FLUSH's cost in messages).
  uint64_t multicasts() const { return multicasts_; }

 private:
  void Change(const std::string& group, std::vector<NodeId> joined, std::vector<NodeId> left,
              Membership::LeaveReason why = Membership::LeaveReason::kNodeDown) {
    Membership m;
    m.view_id = ++view_;
    m.ring_nodes = ring_nodes_;
    for (auto& [node, h] : groups_[group]) m.members.push_back(node);
    m.joined = joined;
    m.left = left;
    m.left_reasons.assign(left.size(), why);
    for (auto& [node, h] : groups_[group]) h->OnMembership(m);
  }
  void DoJoin(const std::string& group, NodeId n, ClusterHandler* h) {
    groups_[group].emplace_back(n, h);
    Change(group, {n}, {});
  }
  void DoLeave(const std::string& group, NodeId n) {
    std::erase_if(groups_[group], [n](const auto& e) { return e.first == n; });
    Change(group, {}, {n}, Membership::LeaveReason::kLeft);
  }
  void DoDeliver(const std::string& group, NodeId from, const std::vector<uint8_t>& m) {
    auto members = groups_[group];
    bool sender_present = false;
    for (auto& [node, h] : members) sender_present |= node == from;
    if (!sender_present) return;  // sent, but its sender left first: nobody gets it
    for (auto& [node, h] : members) h->OnDeliver(from, m);
  }

  std::deque<std::function<void()>> queue_;
  std::map<std::string, std::vector<std::pair<NodeId, ClusterHandler*>>> groups_;
  uint64_t view_ = 0;
  uint64_t multicasts_ = 0;
  uint32_t ring_nodes_ = 0;
};

}  // namespace clogd::logd::testing
