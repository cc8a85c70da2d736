// Stream recording and the CPG property checker (see cpg_checker.h).
#include "tests/sim/cpg_checker.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace clogd::sim {

namespace {

std::string List(const std::vector<NodeId>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

bool Contains(const std::vector<NodeId>& ids, NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

struct Parsed {
  bool ok = false;
  NodeId node = 0;
  size_t stream = 0;
  uint64_t k = 0;
};

// "<node>:<stream>:<k>" followed by optional padding.
Parsed Parse(const std::string& m) {
  Parsed p;
  unsigned long long node = 0, stream = 0, k = 0;
  int used = 0;
  if (std::sscanf(m.c_str(), "%llu:%llu:%llu%n", &node, &stream, &k, &used) != 3) return p;
  p.ok = true;
  p.node = static_cast<NodeId>(node);
  p.stream = static_cast<size_t>(stream);
  p.k = k;
  return p;
}

std::string Name(const CpgStream& s, size_t i) {
  return "stream " + std::to_string(i) + " (node " + std::to_string(s.node) + ", " + s.group + ")";
}

// Checks one stream on its own; fills `own` with the messages it delivered from itself.
void CheckOne(const CpgStream& s, size_t i, std::vector<std::string>& out) {
  const std::string name = Name(s, i);
  for (const std::string& m : s.misuse) out.push_back(name + ": " + m);
  std::vector<NodeId> members;
  bool installed = false;
  uint64_t last_position = 0;
  uint64_t last_view = 0;
  std::set<std::string> seen;
  std::map<size_t, uint64_t> last_k;  // per sender stream: FIFO
  for (size_t e = 0; e < s.events.size(); ++e) {
    const CpgEvent& ev = s.events[e];
    const std::string at = name + " event " + std::to_string(e) + ": ";
    if (ev.kind == CpgEvent::Kind::kLost) {
      if (e + 1 != s.events.size()) out.push_back(at + "events after OnTransportLost");
      continue;
    }
    if (ev.position <= last_position) {
      out.push_back(at + "position " + std::to_string(ev.position) + " after " +
                    std::to_string(last_position) + ": not in agreed order");
    }
    last_position = ev.position;
    if (ev.kind == CpgEvent::Kind::kMembership) {
      const logd::Membership& m = ev.membership;
      if (m.view_id <= last_view) {
        out.push_back(at + "view_id " + std::to_string(m.view_id) + " after " +
                      std::to_string(last_view));
      }
      last_view = m.view_id;
      if (m.left_reasons.size() != m.left.size()) {
        out.push_back(at + "left_reasons not parallel to left");
      }
      if (!installed) {
        if (!Contains(m.joined, s.node) || !Contains(m.members, s.node)) {
          out.push_back(at + "first membership does not show this node joining");
        }
        installed = true;
        members = m.members;
        continue;
      }
      std::set<NodeId> expect(members.begin(), members.end());
      for (NodeId l : m.left) {
        if (!expect.erase(l)) out.push_back(at + "left " + std::to_string(l) + " not a member");
      }
      for (NodeId j : m.joined) {
        if (!expect.insert(j).second) {
          out.push_back(at + "joined " + std::to_string(j) + " already a member");
        }
      }
      const std::set<NodeId> got(m.members.begin(), m.members.end());
      if (got != expect || got.size() != m.members.size()) {
        out.push_back(at + "members " + List(m.members) + " != previous " + List(members) +
                      " - left " + List(m.left) + " + joined " + List(m.joined));
      }
      if (!Contains(m.members, s.node)) out.push_back(at + "this node not in members");
      // Survivors keep their relative order (oldest first).
      std::vector<NodeId> before, after;
      for (NodeId n : members) {
        if (Contains(m.members, n)) before.push_back(n);
      }
      for (NodeId n : m.members) {
        if (Contains(members, n)) after.push_back(n);
      }
      if (before != after) {
        out.push_back(at + "member order changed: " + List(members) + " -> " + List(m.members));
      }
      members = m.members;
      continue;
    }
    if (!installed) out.push_back(at + "message before the first membership");
    const Parsed p = Parse(ev.message);
    if (!p.ok || p.node != ev.from) {
      out.push_back(at + "message '" + ev.message.substr(0, 40) + "' not from node " +
                    std::to_string(ev.from));
    }
    if (!Contains(members, ev.from)) {
      out.push_back(at + "message from node " + std::to_string(ev.from) +
                    ", not a member of the current view " + List(members));
    }
    if (!seen.insert(ev.message).second) out.push_back(at + "duplicate " + ev.message);
    auto [it, fresh] = last_k.emplace(p.stream, p.k);
    if (!fresh) {
      if (p.k <= it->second) out.push_back(at + "sender FIFO broken at " + ev.message);
      it->second = p.k;
    }
  }
}

}  // namespace

CpgStream& StreamHandler::Stream() {
  CpgStream& s = recorder_->streams_[stream_];
  if (recorder_->in_transport_call) s.misuse.push_back("callback inside a transport call");
  return s;
}

std::string StreamHandler::NextMessage(size_t pad) {
  std::string m = std::to_string(Stream().node) + ":" + std::to_string(stream_) + ":" +
                  std::to_string(next_k_++);
  m.append(pad, '.');
  return m;
}

void StreamHandler::OnDeliver(NodeId from, std::span<const uint8_t> message) {
  CpgStream& s = Stream();
  CpgEvent ev;
  ev.kind = CpgEvent::Kind::kDeliver;
  ev.from = from;
  ev.message.assign(message.begin(), message.end());
  ev.time = recorder_->loop_.Now();
  if (!recorder_->tap_pending_ || recorder_->tap_node_ != s.node ||
      recorder_->tap_group_ != s.group) {
    s.misuse.push_back("OnDeliver without a matching tap");
  }
  ev.position = recorder_->tap_position_;
  recorder_->tap_pending_ = false;
  if (s.ended) s.misuse.push_back("OnDeliver after the stream ended: " + ev.message);
  s.events.push_back(std::move(ev));
}

void StreamHandler::OnMembership(const logd::Membership& membership) {
  CpgStream& s = Stream();
  CpgEvent ev;
  ev.kind = CpgEvent::Kind::kMembership;
  ev.membership = membership;
  ev.time = recorder_->loop_.Now();
  if (!recorder_->tap_pending_ || recorder_->tap_node_ != s.node ||
      recorder_->tap_group_ != s.group) {
    s.misuse.push_back("OnMembership without a matching tap");
  }
  ev.position = recorder_->tap_position_;
  recorder_->tap_pending_ = false;
  if (s.ended) s.misuse.push_back("OnMembership after the stream ended");
  s.events.push_back(std::move(ev));
  installed_ = true;
  if (after_membership) after_membership(membership);
}

void StreamHandler::OnTransportLost() {
  CpgStream& s = Stream();
  if (s.ended) s.misuse.push_back("OnTransportLost after the stream ended");
  CpgEvent ev;
  ev.kind = CpgEvent::Kind::kLost;
  ev.time = recorder_->loop_.Now();
  s.events.push_back(std::move(ev));
  s.ended = true;
  if (after_lost) after_lost();
}

CpgRecorder::CpgRecorder(SimCpg& cpg, EventLoop& loop) : loop_(loop) {
  cpg.SetDeliveryTap([this](NodeId node, const std::string& group, uint64_t position) {
    tap_node_ = node;
    tap_group_ = group;
    tap_position_ = position;
    tap_pending_ = true;
  });
}

StreamHandler* CpgRecorder::NewStream(NodeId node, const std::string& group) {
  CpgStream s;
  s.node = node;
  s.group = group;
  streams_.push_back(std::move(s));
  handlers_.push_back(std::make_unique<StreamHandler>(this, streams_.size() - 1));
  return handlers_.back().get();
}

Status CpgRecorder::Send(logd::ClusterTransport& transport, StreamHandler* handler, size_t pad) {
  const std::string m = handler->NextMessage(pad);
  const std::string group = streams_[handler->stream()].group;
  const bool outer = in_transport_call;
  in_transport_call = true;
  Status st = transport.Multicast(
      group, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(m.data()), m.size()));
  in_transport_call = outer;
  if (st.ok()) streams_[handler->stream()].sent.push_back(m);
  return st;
}

std::vector<std::string> CheckCpgStreams(const std::vector<CpgStream>& streams, bool quiescent) {
  std::vector<std::string> out;
  for (size_t i = 0; i < streams.size(); ++i) CheckOne(streams[i], i, out);

  // The same position is the same event everywhere (a message, or a change with the same
  // member list; `left`/`joined` differ between the sides of a merge).
  std::map<std::pair<std::string, uint64_t>, std::string> what;
  std::map<std::pair<std::string, uint64_t>, uint64_t> view_at;  // view_id names one change
  for (size_t i = 0; i < streams.size(); ++i) {
    for (const CpgEvent& ev : streams[i].events) {
      if (ev.kind == CpgEvent::Kind::kLost) continue;
      if (ev.kind == CpgEvent::Kind::kMembership) {
        auto [v, fresh] =
            view_at.emplace(std::make_pair(streams[i].group, ev.membership.view_id), ev.position);
        if (!fresh && v->second != ev.position) {
          out.push_back(Name(streams[i], i) + ": view_id " + std::to_string(ev.membership.view_id) +
                        " names two changes");
        }
      }
      const std::string sig = ev.kind == CpgEvent::Kind::kDeliver
                                  ? "message " + ev.message
                                  : "membership view " + std::to_string(ev.membership.view_id) +
                                        " " + List(ev.membership.members);
      auto [it, fresh] = what.emplace(std::make_pair(streams[i].group, ev.position), sig);
      if (!fresh && it->second != sig) {
        out.push_back(Name(streams[i], i) + ": position " + std::to_string(ev.position) + " is " +
                      sig + " here but " + it->second + " elsewhere");
      }
    }
  }

  // Oldest member first: at each change, the members that delivered it are listed in the
  // order in which they joined (their own join's position).
  std::map<std::pair<std::string, uint64_t>, std::vector<std::pair<NodeId, uint64_t>>> ages;
  std::map<std::pair<std::string, uint64_t>, const std::vector<NodeId>*> lists;
  for (const CpgStream& s : streams) {
    uint64_t joined_at = 0;
    for (const CpgEvent& ev : s.events) {
      if (ev.kind != CpgEvent::Kind::kMembership) continue;
      if (joined_at == 0) joined_at = ev.position;
      ages[{s.group, ev.position}].emplace_back(s.node, joined_at);
      lists[{s.group, ev.position}] = &ev.membership.members;
    }
  }
  for (auto& [key, age] : ages) {
    const std::vector<NodeId>& members = *lists.at(key);
    std::sort(age.begin(), age.end(), [&](const auto& a, const auto& b) {
      return std::find(members.begin(), members.end(), a.first) <
             std::find(members.begin(), members.end(), b.first);
    });
    for (size_t i = 1; i < age.size(); ++i) {
      if (age[i - 1].second > age[i].second) {
        out.push_back(key.first + " change " + std::to_string(key.second) + " lists node " +
                      std::to_string(age[i - 1].first) + " before older node " +
                      std::to_string(age[i].first) + ": " + List(members));
        break;
      }
    }
  }

  // Agreed order, judged on content alone: any two streams order their common messages alike.
  std::vector<std::map<std::string, size_t>> index(streams.size());
  for (size_t i = 0; i < streams.size(); ++i) {
    size_t n = 0;
    for (const CpgEvent& ev : streams[i].events) {
      if (ev.kind == CpgEvent::Kind::kDeliver) index[i][ev.message] = n++;
    }
  }
  for (size_t a = 0; a < streams.size(); ++a) {
    for (size_t b = a + 1; b < streams.size(); ++b) {
      if (streams[a].group != streams[b].group) continue;
      size_t last = 0;
      bool first = true;
      for (const CpgEvent& ev : streams[b].events) {
        if (ev.kind != CpgEvent::Kind::kDeliver) continue;
        auto it = index[a].find(ev.message);
        if (it == index[a].end()) continue;
        if (!first && it->second <= last) {
          out.push_back(Name(streams[a], a) + " and " + Name(streams[b], b) +
                        " deliver common messages in different orders (at " + ev.message + ")");
          break;
        }
        first = false;
        last = it->second;
      }
    }
  }

  // Virtual synchrony: streams that install change s right after change p delivered the
  // same messages between them. And a member that stays from p to s (seen from A) installs
  // s right after p too, unless its stream ended first.
  std::map<std::tuple<std::string, uint64_t, uint64_t>, std::pair<size_t, std::vector<std::string>>>
      between;
  std::map<std::tuple<std::string, NodeId, uint64_t>, size_t> who_installed;  // (g, node, p)
  for (size_t i = 0; i < streams.size(); ++i) {
    for (const CpgEvent& ev : streams[i].events) {
      if (ev.kind == CpgEvent::Kind::kMembership) {
        who_installed[{streams[i].group, streams[i].node, ev.position}] = i;
      }
    }
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    const CpgStream& s = streams[i];
    const CpgEvent* prev = nullptr;
    std::vector<std::string> msgs;
    for (const CpgEvent& ev : s.events) {
      if (ev.kind == CpgEvent::Kind::kDeliver) {
        msgs.push_back(ev.message);
        continue;
      }
      if (ev.kind != CpgEvent::Kind::kMembership) continue;
      if (prev != nullptr) {
        std::vector<std::string> sorted = msgs;
        std::sort(sorted.begin(), sorted.end());
        auto key = std::make_tuple(s.group, prev->position, ev.position);
        auto [it, fresh] = between.emplace(key, std::make_pair(i, sorted));
        if (!fresh && it->second.second != sorted) {
          out.push_back(Name(s, i) + " and " + Name(streams[it->second.first], it->second.first) +
                        " installed change " + std::to_string(ev.position) + " after " +
                        std::to_string(prev->position) + " with different message sets (" +
                        std::to_string(sorted.size()) + " vs " +
                        std::to_string(it->second.second.size()) + ")");
        }
        for (NodeId b : prev->membership.members) {
          if (b == s.node || !Contains(ev.membership.members, b) ||
              Contains(ev.membership.joined, b)) {
            continue;
          }
          auto w = who_installed.find({s.group, b, prev->position});
          if (w == who_installed.end()) continue;
          const CpgStream& other = streams[w->second];
          bool after_p = false, done = false;
          for (const CpgEvent& oe : other.events) {
            if (oe.position == prev->position && oe.kind == CpgEvent::Kind::kMembership) {
              after_p = true;
              continue;
            }
            if (!after_p || oe.kind != CpgEvent::Kind::kMembership) continue;
            if (oe.position != ev.position) {
              out.push_back(Name(s, i) + ": node " + std::to_string(b) + " stayed from change " +
                            std::to_string(prev->position) + " to " + std::to_string(ev.position) +
                            " but installed " + std::to_string(oe.position) + " in between");
            }
            done = true;
            break;
          }
          if (!done && !other.ended && quiescent) {
            out.push_back(Name(s, i) + ": node " + std::to_string(b) + " stayed from change " +
                          std::to_string(prev->position) + " but never installed " +
                          std::to_string(ev.position));
          }
        }
      }
      prev = &ev;
      msgs.clear();
    }
  }

  // Self-delivery: a stream delivers its own messages in the order sent; a stream still open
  // at a quiet end delivered all of them.
  for (size_t i = 0; i < streams.size(); ++i) {
    const CpgStream& s = streams[i];
    std::vector<std::string> own;
    for (const CpgEvent& ev : s.events) {
      if (ev.kind != CpgEvent::Kind::kDeliver) continue;
      const Parsed p = Parse(ev.message);
      if (p.ok && p.stream == i) own.push_back(ev.message);
    }
    if (own.size() > s.sent.size() || !std::equal(own.begin(), own.end(), s.sent.begin())) {
      out.push_back(Name(s, i) +
                    ": own messages delivered are not a prefix of those sent (lost or reordered)");
    } else if (quiescent && !s.ended && own.size() != s.sent.size()) {
      out.push_back(Name(s, i) + ": sent " + std::to_string(s.sent.size()) +
                    " messages, got back " + std::to_string(own.size()));
    }
  }

  // At a quiet end, the open streams of a group agree on the membership.
  if (quiescent) {
    std::map<std::string, std::pair<size_t, std::vector<NodeId>>> final_view;
    for (size_t i = 0; i < streams.size(); ++i) {
      const CpgStream& s = streams[i];
      if (s.ended) continue;
      const CpgEvent* last = nullptr;
      for (const CpgEvent& ev : s.events) {
        if (ev.kind == CpgEvent::Kind::kMembership) last = &ev;
      }
      if (last == nullptr) {
        out.push_back(Name(s, i) + ": open at a quiet end but never installed");
        continue;
      }
      auto [it, fresh] = final_view.emplace(s.group, std::make_pair(i, last->membership.members));
      if (!fresh && it->second.second != last->membership.members) {
        out.push_back(Name(s, i) + " ends in view " + List(last->membership.members) + ", " +
                      Name(streams[it->second.first], it->second.first) + " in " +
                      List(it->second.second));
      }
    }
  }
  return out;
}

}  // namespace clogd::sim
