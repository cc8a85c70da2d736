// The real clogd on every node of the netns cluster (scripts/cluster-netns.sh): started in
// the node's namespaces with `start-bg` (so it talks to that node's corosync), killed with
// `kill-bg`, its status read with the real `clogctl status --json` over its control socket,
// its log lines read from the file start-bg writes. Sockets live in a directory every
// namespace sees (/tmp), so the test process reaches them from the host.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace clogd::cluster_test {

class ClogdNodes {
 public:
  // `dir`: a directory visible from every node (sockets, pidfiles); `nodes`: 1..N.
  ClogdNodes(std::string dir, int nodes);
  ~ClogdNodes();  // kills every clogd it started
  ClogdNodes(const ClogdNodes&) = delete;
  ClogdNodes& operator=(const ClogdNodes&) = delete;

  std::string KernelSocket(int node) const;
  std::string ControlSocket(int node) const;

  // Starts clogd -f --cluster on `node`; an error names what failed.
  std::optional<std::string> Start(int node, const std::vector<std::string>& extra_args = {});
  // kill-bg with `signal` (default KILL): the process is gone when this returns.
  std::optional<std::string> Kill(int node, const std::string& signal = "KILL");
  // The node was killed as a whole (cluster-netns.sh kill N): its clogd is gone.
  void Forget(int node);
  bool running(int node) const;

  // `clogctl status --json --socket <node's control socket>`; nullopt (and `error` set) if
  // clogctl failed or printed something that is not JSON.
  std::optional<nlohmann::json> Status(int node, std::string* error = nullptr) const;
  // The log `uuid` in a status reply, or null.
  static nlohmann::json LogOf(const nlohmann::json& status, const std::string& uuid);

  // Everything every clogd started on `node` logged so far (all incarnations, in order).
  std::string Output(int node) const;
  // Lines of Output(node) that contain every one of `needles`.
  std::vector<std::string> Lines(int node, const std::vector<std::string>& needles) const;

 private:
  std::string dir_;
  int nodes_;
  std::vector<int> incarnation_;  // per node: the last start-bg name's number
  std::vector<bool> running_;
};

}  // namespace clogd::cluster_test
