// CpgViewSequencer against a model of one CPG group's agreed stream as corosync 3.1.7
// delivers it (see logd/cpg_views.h): process joins/leaves in-ring, ring changes as
// NODEDOWN/NODEUP confchgs followed by the totem confchg, the initial totem confchg after a
// join, partitions that reuse the ring sequence. Checks what ClusterLog relies on: the same
// view id means the same change on every member, ids increase on every member, and members
// that stay see the same changes and deliveries in the same order.
#include "logd/cpg_views.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace clogd::logd {
namespace {

constexpr uint32_t kJoin = 1, kLeave = 2, kNodeDown = 3, kNodeUp = 4, kProcDown = 5;

// One process: its sequencer and what came out of it ("V<id> m.. j.. l.." / "D<from>:<text>").
struct Proc : CpgViewSink {
  Proc(NodeId n, uint32_t p, int s) : node(n), pid(p), side(s), seq(n, p, *this) {}
  void OnViewMembership(const Membership& m) override {
    std::string t = "V" + std::to_string(m.view_id) + " m";
    for (NodeId x : m.members) t += std::to_string(x) + ",";
    t += " j";
    for (NodeId x : m.joined) t += std::to_string(x) + ",";
    t += " l";
    for (size_t i = 0; i < m.left.size(); ++i) {
      t += std::to_string(m.left[i]) + "/" + std::to_string(static_cast<int>(m.left_reasons[i]));
    }
    if (m.ring_nodes != 0) t += " r" + std::to_string(m.ring_nodes);
    out.push_back(t);
    views.push_back(m);
  }
  void OnViewDeliver(NodeId from, std::span<const uint8_t> p) override {
    out.push_back("D" + std::to_string(from) + ":" + std::string(p.begin(), p.end()));
  }
  void OnViewSyncToSend(std::vector<uint8_t> frame) override { to_send.push_back(frame); }
  void OnViewLost(const std::string&) override { lost = true; }

  struct Event {
    enum { kConf, kTotem, kDeliver } kind;
    CpgConfchg conf;
    uint64_t ring = 0;
    uint32_t ring_nodes = 0;
    NodeId from = 0;
    uint32_t from_pid = 0;
    std::vector<uint8_t> frame;

    static Event Conf(const CpgConfchg& c) { return {kConf, c, 0, 0, 0, 0, {}}; }
    static Event Totem(uint64_t ring, uint32_t nodes) {
      return {kTotem, {}, ring, nodes, 0, 0, {}};
    }
    static Event Deliver(NodeId from, uint32_t pid, std::vector<uint8_t> frame) {
      return {kDeliver, {}, 0, 0, from, pid, std::move(frame)};
    }
  };

  NodeId node;
  uint32_t pid;
  int side;  // partition this process's node is in
  bool member = true;
  uint64_t joined_at = 0;         // model time of the join
  uint64_t left_at = UINT64_MAX;  // model time of the leave, crash or node failure
  bool lost = false;
  bool got_initial_totem = false;
  CpgViewSequencer seq;
  std::deque<Event> queue;
  std::vector<std::vector<uint8_t>> to_send;
  std::vector<std::string> out;
  std::vector<Membership> views;
};

// The group as corosync orders it. Every operation appends to the queues of the processes
// that would get it, at once: appending order is the agreed order. With `count_nodes` the
// totem confchgs carry the ring's node count (nodes 1-4 that are up, on that side).
class GroupModel {
 public:
  explicit GroupModel(bool count_nodes = false) : count_nodes_(count_nodes) {}

  Proc& Join(NodeId node) {
    auto p = std::make_unique<Proc>(node, next_pid_++, SideOf(node));
    Proc& proc = *p;
    proc.joined_at = ++time_;
    procs_.push_back(std::move(p));
    CpgConfchg c;
    c.members = Addresses(proc.side, &proc);
    c.joined = {{node, proc.pid, kJoin}};
    for (Proc* m : Members(proc.side)) m->queue.push_back(Proc::Event::Conf(c));
    if (!proc.got_initial_totem) {  // sent right after the join's confchg
      proc.got_initial_totem = true;
      proc.queue.push_back(Proc::Event::Totem(ring_[proc.side], RingNodes(proc.side)));
    }
    return proc;
  }

  void Leave(Proc& proc, uint32_t reason) {
    if (!proc.member) return;
    proc.member = false;
    proc.left_at = ++time_;
    CpgConfchg c;
    c.members = Addresses(proc.side, nullptr);
    c.left = {{proc.node, proc.pid, reason}};
    for (Proc* m : Members(proc.side)) m->queue.push_back(Proc::Event::Conf(c));
  }

  void Multicast(Proc& from, std::vector<uint8_t> frame) {
    if (!from.member) return;  // sent after its leave: never delivered
    for (Proc* m : Members(from.side)) {
      m->queue.push_back(Proc::Event::Deliver(from.node, from.pid, frame));
    }
  }
  void Say(Proc& from, const std::string& text) {
    std::vector<uint8_t> f{kCpgFrameApp};
    f.insert(f.end(), text.begin(), text.end());
    Multicast(from, f);
  }

  // Node `node` dies: its processes are gone, the others see one NODEDOWN confchg and the
  // new ring.
  void NodeDown(NodeId node) {
    const int side = SideOf(node);
    std::vector<CpgAddress> left;
    for (Proc* m : Members(side)) {
      if (m->node != node) continue;
      m->member = false;
      m->left_at = ++time_;
      left.push_back({m->node, m->pid, kNodeDown});
    }
    down_.insert(node);
    ring_[side] += 4;
    if (!left.empty()) {
      CpgConfchg c{Addresses(side, nullptr), left, {}};
      for (Proc* m : Members(side)) m->queue.push_back(Proc::Event::Conf(c));
    }
    Totem(side);
  }
  void NodeUp(NodeId node) {  // back in the ring (no group member yet)
    down_.erase(node);
    ring_[SideOf(node)] += 4;
    Totem(SideOf(node));
  }
  void QuietRingChange() {
    for (auto& [side, seq] : ring_) {
      seq += 4;
      Totem(side);
    }
  }

  // Nodes in `cut` lose contact with the rest: both sides form a ring with the same sequence.
  void Partition(const std::set<NodeId>& cut) {
    std::vector<Proc*> a, b;
    for (Proc* p : Members(0)) (cut.contains(p->node) ? b : a).push_back(p);
    cut_ = cut;
    for (Proc* p : b) p->side = 1;
    ring_[0] = ring_[1] = ring_[0] + 4;
    auto down = [](const std::vector<Proc*>& ps) {
      std::vector<CpgAddress> v;
      for (Proc* p : ps) v.push_back({p->node, p->pid, kNodeDown});
      return v;
    };
    if (!a.empty() && !b.empty()) {
      CpgConfchg to_a{Addresses(0, nullptr), down(b), {}};
      CpgConfchg to_b{Addresses(1, nullptr), down(a), {}};
      for (Proc* p : a) p->queue.push_back(Proc::Event::Conf(to_a));
      for (Proc* p : b) p->queue.push_back(Proc::Event::Conf(to_b));
    }
    Totem(0);
    Totem(1);
  }
  void Heal() {
    std::vector<Proc*> a = Members(0), b = Members(1);
    cut_.clear();
    const uint64_t seq = std::max(ring_[0], ring_[1]) + 4;
    ring_[0] = ring_[1] = seq;
    for (Proc* p : b) p->side = 0;
    auto addr = [](const std::vector<Proc*>& ps) {
      std::vector<CpgAddress> v;
      for (Proc* p : ps) v.push_back({p->node, p->pid, kNodeUp});
      return v;
    };
    CpgConfchg to_a{Addresses(0, nullptr), {}, addr(b)};
    CpgConfchg to_b{Addresses(0, nullptr), {}, addr(a)};
    if (!b.empty()) {
      for (Proc* p : a) p->queue.push_back(Proc::Event::Conf(to_a));
    }
    if (!a.empty()) {
      for (Proc* p : b) p->queue.push_back(Proc::Event::Conf(to_b));
    }
    Totem(0);
  }

  // Feeds up to `n` queued events to `p`'s sequencer; what it asks to send is multicast.
  void Pump(Proc& p, size_t n = SIZE_MAX) {
    while (n-- > 0 && !p.queue.empty() && !p.lost) {
      Proc::Event e = std::move(p.queue.front());
      p.queue.pop_front();
      if (e.kind == Proc::Event::kConf) p.seq.OnConfchg(e.conf);
      if (e.kind == Proc::Event::kTotem) p.seq.OnTotem(e.ring, e.ring_nodes);
      if (e.kind == Proc::Event::kDeliver) p.seq.OnDeliver(e.from, e.from_pid, e.frame);
      for (auto& f : p.to_send) Multicast(p, f);
      p.to_send.clear();
      if (p.lost) Leave(p, kLeave);  // the transport leaves; the handler joins again
    }
  }
  void PumpAll() {
    bool any = true;
    while (any) {
      any = false;
      for (auto& p : procs_) {
        if (!p->queue.empty() && !p->lost) {
          any = true;
          Pump(*p);
        }
      }
    }
  }

  std::vector<std::unique_ptr<Proc>>& procs() { return procs_; }
  uint64_t ring(int side = 0) { return ring_[side]; }
  bool down(NodeId n) const { return down_.contains(n); }

 private:
  int SideOf(NodeId node) const { return cut_.contains(node) ? 1 : 0; }
  std::vector<Proc*> Members(int side) {
    std::vector<Proc*> v;
    for (auto& p : procs_) {
      if (p->member && p->side == side) v.push_back(p.get());
    }
    return v;
  }
  // Members of `side` (plus `extra`), in corosync's order: (node, pid).
  std::vector<CpgAddress> Addresses(int side, Proc* extra) {
    std::vector<CpgAddress> v;
    for (Proc* p : Members(side)) {
      if (p != extra) v.push_back({p->node, p->pid, 0});
    }
    if (extra != nullptr) v.push_back({extra->node, extra->pid, 0});
    std::sort(v.begin(), v.end(),
              [](auto& x, auto& y) { return std::pair(x.node, x.pid) < std::pair(y.node, y.pid); });
    return v;
  }
  void Totem(int side) {
    for (auto& p : procs_) {  // every CPG client gets it, member of the group or not
      if (p->member && p->side == side) {
        p->queue.push_back(Proc::Event::Totem(ring_[side], RingNodes(side)));
      }
    }
  }
  uint32_t RingNodes(int side) const {
    if (!count_nodes_) return 0;
    uint32_t n = 0;
    for (NodeId node = 1; node <= 4; ++node) n += !down_.contains(node) && SideOf(node) == side;
    return n;
  }

  bool count_nodes_;
  uint64_t time_ = 0;
  uint32_t next_pid_ = 100;
  std::map<int, uint64_t> ring_{{0, 20}, {1, 20}};
  std::set<NodeId> cut_;
  std::set<NodeId> down_;
  std::vector<std::unique_ptr<Proc>> procs_;
};

uint64_t IdOf(const std::string& token) { return std::stoull(token.substr(1)); }

// The invariants, over every pair of processes.
// (A group that empties and is created again within one ring numbers its changes from 1
// again, so only processes that were members at the same time are compared.)
void CheckAgreement(GroupModel& model) {
  auto& procs = model.procs();
  auto present_at_join = [](const Proc& p, const Proc& q) {
    return p.joined_at < q.joined_at && q.joined_at < p.left_at;
  };
  auto overlap = [](const Proc& p, const Proc& q) {
    return p.joined_at < q.left_at && q.joined_at < p.left_at;
  };
  for (auto& p : procs) {
    for (size_t i = 1; i < p->views.size(); ++i) {
      EXPECT_LT(p->views[i - 1].view_id, p->views[i].view_id)
          << "process " << p->node << "/" << p->pid << ": view ids must increase";
    }
    if (!p->views.empty()) {
      const auto& j = p->views.front().joined;
      EXPECT_NE(std::find(j.begin(), j.end(), p->node), j.end())
          << "a joiner's first change lists itself in joined";
    }
  }
  for (auto& p : procs) {
    for (auto& q : procs) {
      if (p == q || q->out.empty() || !present_at_join(*p, *q)) continue;
      // Where q's history begins inside p's (if p saw q's first view), both must agree
      // token for token until one of them stops (left, lost, or not pumped further).
      auto start = std::find(p->out.begin(), p->out.end(), q->out.front());
      if (start == p->out.end()) continue;
      size_t pi = static_cast<size_t>(start - p->out.begin());
      for (size_t qi = 0; qi < q->out.size() && pi < p->out.size(); ++qi, ++pi) {
        if (p->out[pi] == q->out[qi]) continue;
        // A partition: both sides carry on with views neither sees; allowed only when both
        // tokens are views (each side's own ring change).
        ASSERT_TRUE(p->out[pi][0] == 'V' && q->out[qi][0] == 'V')
            << "process " << p->node << "/" << p->pid << " and " << q->node << "/" << q->pid
            << " diverge: '" << p->out[pi] << "' vs '" << q->out[qi] << "'";
        break;
      }
    }
  }
  // Same view id, each process in the other's member list: the same change.
  auto lists = [](const std::string& token, NodeId node) {
    const size_t m = token.find(" m") + 2;
    const std::string members = token.substr(m, token.find(" j") - m);
    return members.find(std::to_string(node) + ",") == 0 ||
           members.find("," + std::to_string(node) + ",") != std::string::npos;
  };
  std::map<uint64_t, std::vector<std::pair<Proc*, std::string>>> by_id;
  for (auto& p : procs) {
    for (const std::string& t : p->out) {
      if (t[0] == 'V') by_id[IdOf(t)].push_back({p.get(), t});
    }
  }
  for (auto& [id, seen] : by_id) {
    for (auto& [p, t] : seen) {
      for (auto& [q, u] : seen) {
        if (!overlap(*p, *q) || !lists(t, q->node) || !lists(u, p->node)) continue;
        // At a merge each side sees the other in `joined`: a ring change (count 0) must
        // agree on the members; a change within a ring on everything.
        const bool ring_change = static_cast<uint32_t>(id) == 0;
        if (ring_change) {
          EXPECT_EQ(t.substr(0, t.find(" j")), u.substr(0, u.find(" j")))
              << "view id " << id << " names two different member lists";
        } else {
          EXPECT_EQ(t, u) << "view id " << id << " names two different changes";
        }
      }
    }
  }
}

TEST(CpgViewsTest, SequentialJoinsNumberChangesWithinTheRing) {
  GroupModel g;
  Proc& a = g.Join(1);
  g.PumpAll();
  ASSERT_EQ(a.views.size(), 1u);
  EXPECT_EQ(a.views[0].view_id, CpgViewSequencer::MakeViewId(20, 1)) << "alone: ring 20, first";
  Proc& b = g.Join(2);
  g.PumpAll();
  Proc& c = g.Join(3);
  g.PumpAll();
  g.Say(a, "x");
  g.Say(c, "y");
  g.PumpAll();
  ASSERT_EQ(c.views.size(), 1u);
  EXPECT_EQ(c.views[0].view_id, CpgViewSequencer::MakeViewId(20, 3));
  EXPECT_EQ(b.views.back().view_id, c.views[0].view_id);
  EXPECT_EQ(a.views.back().members, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(c.out.back(), "D3:y");
  CheckAgreement(g);
}

TEST(CpgViewsTest, JoinerHoldsEverythingUntilItsViewIsKnown) {
  GroupModel g;
  Proc& a = g.Join(1);
  g.PumpAll();
  Proc& b = g.Join(2);
  Proc& c = g.Join(3);  // before a has even seen b's join
  g.Say(a, "early");
  g.Pump(c);  // c has nothing to go on yet
  EXPECT_TRUE(c.out.empty()) << "a joiner hands nothing on before its view id is known";
  g.PumpAll();
  ASSERT_FALSE(c.out.empty());
  EXPECT_EQ(c.views[0].view_id, CpgViewSequencer::MakeViewId(20, 3));
  EXPECT_EQ(b.views[0].view_id, CpgViewSequencer::MakeViewId(20, 2));
  EXPECT_TRUE(c.seq.has_view());
  CheckAgreement(g);
  EXPECT_EQ(a.out.back(), b.out.back());
  EXPECT_EQ(b.out.back(), c.out.back());
}

TEST(CpgViewsTest, NodeDownIsOneChangeNumberedByTheNewRing) {
  GroupModel g;
  Proc& a = g.Join(1);
  g.PumpAll();
  Proc& b = g.Join(2);
  g.PumpAll();
  g.Join(3);
  g.PumpAll();
  g.NodeDown(3);
  g.PumpAll();
  const Membership& m = a.views.back();
  EXPECT_EQ(m.view_id, CpgViewSequencer::MakeViewId(24, 0));
  EXPECT_EQ(m.members, (std::vector<NodeId>{1, 2}));
  EXPECT_EQ(m.left, (std::vector<NodeId>{3}));
  ASSERT_EQ(m.left_reasons.size(), 1u);
  EXPECT_EQ(m.left_reasons[0], Membership::LeaveReason::kNodeDown);
  EXPECT_EQ(b.views.back().view_id, m.view_id);
  // A process joining in the new ring is numbered from it.
  g.NodeUp(3);
  Proc& c2 = g.Join(3);
  g.PumpAll();
  EXPECT_EQ(c2.views[0].view_id, CpgViewSequencer::MakeViewId(28, 1));
  EXPECT_EQ(a.views.back().view_id, c2.views[0].view_id);
  CheckAgreement(g);
}

TEST(CpgViewsTest, LeaveAndProcessDownKeepTheirReasons) {
  GroupModel g;
  Proc& a = g.Join(1);
  g.PumpAll();
  Proc& b = g.Join(2);
  g.PumpAll();
  Proc& c = g.Join(3);
  g.PumpAll();
  g.Leave(b, kLeave);
  g.Leave(c, kProcDown);
  g.PumpAll();
  ASSERT_GE(a.views.size(), 2u);
  const Membership& left_b = a.views[a.views.size() - 2];
  const Membership& down_c = a.views.back();
  EXPECT_EQ(left_b.left_reasons, std::vector{Membership::LeaveReason::kLeft});
  EXPECT_EQ(down_c.left_reasons, std::vector{Membership::LeaveReason::kProcessDown});
  EXPECT_LT(left_b.view_id, down_c.view_id);
  CheckAgreement(g);
}

// A second process of a member node (a probe, or a restarted daemon whose join came before
// its old process's leave): the node is one member; its join is handed on, its leave and
// its exit are not while another process of its node stays; the node leaves with its last
// process, and a node down takes all of them at once.
TEST(CpgViewsTest, ANodeWithSeveralProcessesIsOneMemberAndLeavesWithTheLast) {
  GroupModel g;
  Proc& a = g.Join(1);
  g.PumpAll();
  g.Join(2);
  g.PumpAll();
  Proc& c = g.Join(3);
  g.PumpAll();
  Proc& rogue = g.Join(3);
  g.PumpAll();
  EXPECT_EQ(a.views.back().members, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(a.views.back().joined, (std::vector<NodeId>{3})) << "each process's join is seen";
  g.Leave(rogue, kProcDown);
  g.PumpAll();
  EXPECT_EQ(a.views.back().members, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_TRUE(a.views.back().left.empty()) << "node 3's daemon is still in the group";
  Proc& again = g.Join(3);
  g.PumpAll();
  g.Leave(again, kLeave);
  g.PumpAll();
  EXPECT_TRUE(a.views.back().left.empty()) << "a leave of a second process";
  EXPECT_TRUE(a.views.back().left_reasons.empty());
  // A restart: the new process joined before the old one's exit was seen.
  Proc& restarted = g.Join(3);
  g.PumpAll();
  g.Leave(c, kProcDown);
  g.PumpAll();
  EXPECT_TRUE(a.views.back().left.empty()) << "the restarted daemon stays node 3's member";
  g.Join(3);
  g.PumpAll();
  g.NodeDown(3);
  g.PumpAll();
  EXPECT_EQ(a.views.back().members, (std::vector<NodeId>{1, 2}));
  EXPECT_EQ(a.views.back().left, (std::vector<NodeId>{3})) << "once, for both processes";
  EXPECT_EQ(a.views.back().left_reasons, std::vector{Membership::LeaveReason::kNodeDown});
  ASSERT_FALSE(restarted.views.empty());
  EXPECT_EQ(restarted.views.front().members, (std::vector<NodeId>{1, 2, 3}));
  CheckAgreement(g);
}

TEST(CpgViewsTest, MergeGivesBothSidesTheSameView) {
  GroupModel g;
  Proc& a = g.Join(1);
  g.PumpAll();
  Proc& b = g.Join(2);
  g.PumpAll();
  Proc& c = g.Join(3);
  g.PumpAll();
  g.Partition({3});
  g.PumpAll();
  EXPECT_EQ(a.views.back().view_id, c.views.back().view_id)
      << "both sides of a split reuse the ring sequence (documented)";
  EXPECT_NE(a.views.back().members, c.views.back().members);
  g.Heal();
  g.PumpAll();
  EXPECT_EQ(a.views.back().view_id, CpgViewSequencer::MakeViewId(28, 0));
  EXPECT_EQ(c.views.back().view_id, a.views.back().view_id);
  EXPECT_EQ(c.views.back().members, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(a.views.back().joined, (std::vector<NodeId>{3}));
  EXPECT_EQ(c.views.back().joined, (std::vector<NodeId>{1, 2}));
  EXPECT_EQ(b.views.back().view_id, a.views.back().view_id);
  CheckAgreement(g);
}

TEST(CpgViewsTest, JoinerWhoseEarlierMembersAllLeaveIsToldToJoinAgain) {
  GroupModel g;
  Proc& a = g.Join(1);
  g.PumpAll();
  Proc& b = g.Join(2);
  g.Leave(a, kProcDown);  // a dies before it could tell b the view id
  g.Pump(b);
  EXPECT_TRUE(b.lost);
  EXPECT_TRUE(b.out.empty());
  Proc& b2 = g.Join(2);  // what the handler does after OnTransportLost
  g.PumpAll();
  ASSERT_EQ(b2.views.size(), 1u);
  EXPECT_EQ(b2.views[0].members, std::vector<NodeId>{2});
}

TEST(CpgViewsTest, RingChangeWithoutGroupChangeRestartsTheCount) {
  GroupModel g;
  Proc& a = g.Join(1);
  g.PumpAll();
  g.QuietRingChange();
  Proc& b = g.Join(2);
  g.PumpAll();
  EXPECT_EQ(b.views[0].view_id, CpgViewSequencer::MakeViewId(24, 1));
  EXPECT_EQ(a.views.back().view_id, b.views[0].view_id);
  CheckAgreement(g);
}

// A ring change that leaves the group as it was is handed on when the ring's size changed
// (quorum counts the ring), as a change naming nobody, numbered by the new ring; the same
// on every member. A joiner knows the size from its initial totem confchg.
TEST(CpgViewsTest, ARingThatChangesSizeUnderAnUnchangedGroupIsAChange) {
  GroupModel g(/*count_nodes=*/true);
  Proc& a = g.Join(1);
  Proc& b = g.Join(2);
  g.PumpAll();
  ASSERT_EQ(a.views.size(), 2u);
  EXPECT_EQ(a.views.back().ring_nodes, 4u);
  ASSERT_EQ(b.views.size(), 1u);
  EXPECT_EQ(b.views.back().ring_nodes, 4u) << "the joiner's first change";
  g.NodeDown(4);  // not in the group
  g.PumpAll();
  for (Proc* p : {&a, &b}) {
    ASSERT_FALSE(p->views.empty());
    const Membership& m = p->views.back();
    EXPECT_EQ(m.view_id, CpgViewSequencer::MakeViewId(g.ring(), 0));
    EXPECT_EQ(m.ring_nodes, 3u);
    EXPECT_EQ(m.members, (std::vector<NodeId>{1, 2}));
    EXPECT_TRUE(m.joined.empty() && m.left.empty());
  }
  const size_t before = a.views.size();
  g.QuietRingChange();  // same size: nothing to hand on
  g.PumpAll();
  EXPECT_EQ(a.views.size(), before);
  g.Partition({3});  // 3 is not in the group either: {1,2,4} | {3}
  g.PumpAll();
  EXPECT_EQ(a.views.back().ring_nodes, 2u);
  EXPECT_EQ(b.views.back().ring_nodes, 2u);
  CheckAgreement(g);
}

// Random joins, leaves, crashes, node failures, quiet ring changes and messages, with
// processes lagging behind by random amounts; the invariants hold throughout, with ring
// sizes in the totem confchgs or without.
void RandomHistoriesAgree(bool count_nodes) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    GroupModel g(count_nodes);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    for (int step = 0; step < 60; ++step) {
      std::vector<Proc*> live;
      for (auto& p : g.procs()) {
        if (p->member && !p->lost) live.push_back(p.get());
      }
      const NodeId node = pick(4) + 1;
      const bool node_has_member =
          std::any_of(live.begin(), live.end(), [&](Proc* p) { return p->node == node; });
      switch (pick(8)) {
        case 0:
        case 1:
          if (!node_has_member && !g.down(node)) g.Join(node);
          break;
        case 2:
          if (!live.empty()) g.Leave(*live[pick(static_cast<uint32_t>(live.size()))], kLeave);
          break;
        case 3:
          if (!live.empty()) g.Leave(*live[pick(static_cast<uint32_t>(live.size()))], kProcDown);
          break;
        case 4:
          if (g.down(node)) {
            g.NodeUp(node);
          } else if (pick(3) == 0) {
            g.NodeDown(node);
          } else {
            g.QuietRingChange();
          }
          break;
        default:
          for (Proc* p : live) {
            if (p->seq.has_view()) g.Say(*p, std::to_string(step));
          }
      }
      for (auto& p : g.procs()) g.Pump(*p, pick(4));
    }
    g.PumpAll();
    CheckAgreement(g);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(CpgViewsTest, RandomHistoriesAgree) { RandomHistoriesAgree(false); }
TEST(CpgViewsTest, RandomHistoriesWithRingSizesAgree) { RandomHistoriesAgree(true); }

}  // namespace
}  // namespace clogd::logd
