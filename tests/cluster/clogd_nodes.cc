// ClogdNodes: clogd processes in the netns cluster's nodes. See clogd_nodes.h.
#include "tests/cluster/clogd_nodes.h"

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/cluster/cluster_harness.h"

namespace clogd::cluster_test {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

ClogdNodes::ClogdNodes(std::string dir, int nodes)
    : dir_(std::move(dir)),
      nodes_(nodes),
      incarnation_(size_t(nodes + 1), 0),
      running_(size_t(nodes + 1), false) {}

ClogdNodes::~ClogdNodes() {
  for (int n = 1; n <= nodes_; ++n) {
    if (running_[size_t(n)]) (void)Kill(n);
  }
}

std::string ClogdNodes::KernelSocket(int node) const {
  return dir_ + "/n" + std::to_string(node) + ".kernel";
}
std::string ClogdNodes::ControlSocket(int node) const {
  return dir_ + "/n" + std::to_string(node) + ".ctl";
}

std::optional<std::string> ClogdNodes::Start(int node, const std::vector<std::string>& extra) {
  const std::string name = "clogd" + std::to_string(++incarnation_[size_t(node)]);
  std::string args = "start-bg " + std::to_string(node) + " " + name + " " + CLOGD_BINARY +
                     " -f --cluster --kernel-socket " + KernelSocket(node) + " --control-socket " +
                     ControlSocket(node) + " --pidfile " + dir_ + "/n" + std::to_string(node) +
                     ".pid";
  for (const auto& a : extra) args += " " + a;
  CommandResult r = RunScript(args);
  if (r.exit_code != 0) return "cluster-netns.sh " + args + " failed:\n" + r.output;
  running_[size_t(node)] = true;
  return std::nullopt;
}

std::optional<std::string> ClogdNodes::Kill(int node, const std::string& signal) {
  if (!running_[size_t(node)]) return std::nullopt;
  const std::string name = "clogd" + std::to_string(incarnation_[size_t(node)]);
  CommandResult r = RunScript("kill-bg " + std::to_string(node) + " " + name + " " + signal);
  running_[size_t(node)] = false;
  if (r.exit_code != 0)
    return "kill-bg " + name + " on node " + std::to_string(node) + ":\n" + r.output;
  return std::nullopt;
}

void ClogdNodes::Forget(int node) { running_[size_t(node)] = false; }
bool ClogdNodes::running(int node) const { return running_[size_t(node)]; }

std::optional<nlohmann::json> ClogdNodes::Status(int node, std::string* error) const {
  const std::string command =
      std::string(CLOGCTL_BINARY) + " status --json --socket " + ControlSocket(node) + " 2>&1";
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    if (error) *error = "popen failed: " + command;
    return std::nullopt;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (status != 0 || j.is_discarded() || !j.is_object()) {
    if (error) *error = "node " + std::to_string(node) + ": " + command + ": " + Trim(out);
    return std::nullopt;
  }
  return j;
}

nlohmann::json ClogdNodes::LogOf(const nlohmann::json& status, const std::string& uuid) {
  if (!status.contains("logs")) return nullptr;
  for (const auto& log : status["logs"]) {
    if (log.value("uuid", "") == uuid) return log;
  }
  return nullptr;
}

std::string ClogdNodes::Output(int node) const {
  const std::string node_dir = Trim(RunScript("dir " + std::to_string(node)).output);
  std::string out;
  for (int i = 1; i <= incarnation_[size_t(node)]; ++i) {
    out += ReadFile(node_dir + "/clogd" + std::to_string(i) + ".log");
  }
  return out;
}

std::vector<std::string> ClogdNodes::Lines(int node,
                                           const std::vector<std::string>& needles) const {
  std::vector<std::string> out;
  std::istringstream in(Output(node));
  std::string line;
  while (std::getline(in, line)) {
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

}  // namespace clogd::cluster_test
