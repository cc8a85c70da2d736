// clogctl: the operator's tool.
//   clogctl status [--json] [--socket PATH]            every log this node's clogd serves
//   clogctl status --watch [--interval S] [--count N]  resync progress, redrawn in place
//   clogctl nodes [--json] [--socket PATH]             this node and each log's members
//   clogctl inspect <device> [--json]                  read a log device offline
//   clogctl replace-leg <mirror> <new-device> [--leg N] [--offset S]
//   clogctl add-leg <mirror> <new-device> [--offset S]
//                                                      a new leg on every node, resynced
// status, nodes and the leg commands ask the daemon over its control socket
// (logd/README.md). Any failure is one line on stderr and exit 1. Exceptions stop here.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "logd/control_client.h"
#include "logd/control_server.h"
#include "logd/device_path.h"
#include "logd/dm_legs.h"
#include "logd/log_inspect.h"
#include "logd/resync_progress.h"
#include "logd/status_report.h"

namespace {

namespace logd = clogd::logd;
using logd::ControlClient;
using logd::LogReport;

int Fail(const std::string& message) {
  std::cerr << "clogctl: " << message << "\n";
  return 1;
}

int Inspect(const std::string& device, bool json) {
  auto path = logd::ResolveDevicePath(device);
  if (!path.ok()) return Fail(path.status().message());
  auto dev = clogd::region::OpenDirectDevice(*path);
  if (!dev.ok()) return Fail(dev.status().message());
  auto in = logd::InspectLog(**dev);
  if (!in.ok()) return Fail(in.status().message());
  std::cout << (json ? logd::InspectionJson(*in) + "\n" : logd::FormatInspection(*in));
  return in->problems.empty() ? 0 : 2;
}

int ShowStatus(const std::string& socket, bool json) {
  auto client = ControlClient::Connect(socket);
  if (!client.ok()) return Fail(client.status().message());
  auto reply = client->Call(R"({"cmd":"status"})");
  if (!reply.ok()) return Fail(reply.status().message());
  auto report = logd::StatusFromJson(*reply);
  if (!report.ok()) return Fail("unexpected reply from clogd: " + report.status().message());
  std::cout << (json ? *reply + "\n" : logd::FormatStatus(*report));
  return 0;
}

int ShowNodes(const std::string& socket, bool json) {
  auto client = ControlClient::Connect(socket);
  if (!client.ok()) return Fail(client.status().message());
  auto reply = client->Call(R"({"cmd":"nodes"})");
  if (!reply.ok()) return Fail(reply.status().message());
  auto report = logd::NodesFromJson(*reply);
  if (!report.ok()) return Fail("unexpected reply from clogd: " + report.status().message());
  std::cout << (json ? *reply + "\n" : logd::FormatNodes(*report));
  return 0;
}

// The mirror (a dm device or its log's uuid) and leg as this node sees them, then the
// change through clogd, which runs it on every node and answers once it is decided.
int ChangeLeg(const std::string& socket, const std::string& mirror, const std::string& device,
              std::optional<uint32_t> leg, uint64_t offset, bool add, int timeout_s) {
  if (device.empty() || (device.front() != '/' && device.find(':') == std::string::npos)) {
    return Fail("new leg '" + device + "': give a path (every node opens that path)");
  }
  auto dm = clogd::dmtable::MakeLibDeviceMapper();
  auto target = logd::FindReplaceTarget(*dm, mirror, leg, add);
  if (!target.ok()) return Fail(target.error().message);
  auto number = logd::BlockDeviceNumber(device);
  if (!number.ok()) return Fail(number.error().message);
  auto client = ControlClient::Connect(socket);
  if (!client.ok()) return Fail(client.status().message());
  nlohmann::json req = {
      {"cmd", "replace-leg"}, {"log", target->uuid}, {"device", device}, {"offset", offset}};
  if (target->leg) req["leg"] = *target->leg;
  std::cout << target->device << ": "
            << (target->leg ? "replacing leg " + std::to_string(*target->leg) + " of " +
                                  std::to_string(target->legs) + " by " + device
                            : "adding " + device + " as leg " + std::to_string(target->legs))
            << " on every node..." << std::endl;
  auto reply = client->Call(req.dump(), timeout_s * 1000);
  if (!reply.ok()) return Fail(reply.status().message());
  const auto json = nlohmann::json::parse(*reply, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("message")) {
    return Fail("unexpected reply from clogd: " + *reply);
  }
  std::cout << target->device << ": " << json["message"].get<std::string>() << "\n";
  return 0;
}

// Tells two instances of one uuid apart (a table reload has both for a moment).
std::string LogKey(const LogReport& log) {
  return log.luid ? log.uuid + "#" + std::to_string(*log.luid) : log.uuid;
}

std::string WallClock() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

// Samples the daemon every `interval` seconds. On a terminal the progress lines are
// redrawn in place; otherwise each sample prints one line per log, prefixed by the time.
int Watch(const std::string& socket, double interval, uint64_t count, bool json) {
  auto client = ControlClient::Connect(socket);
  if (!client.ok()) return Fail(client.status().message());
  const bool tty = isatty(STDOUT_FILENO) == 1 && !json;
  const auto start = std::chrono::steady_clock::now();
  std::map<std::string, logd::ResyncRate> rates;
  size_t drawn = 0;  // lines drawn last time (tty)
  for (uint64_t sample = 0; count == 0 || sample < count; ++sample) {
    if (sample > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    auto reply = client->Call(R"({"cmd":"status","device_slots":false})");
    if (!reply.ok()) return Fail(reply.status().message());
    auto report = logd::StatusFromJson(*reply);
    if (!report.ok()) return Fail("unexpected reply from clogd: " + report.status().message());
    if (json) {
      std::cout << *reply << std::endl;
      continue;
    }
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<std::string> lines;
    const std::string stamp = tty ? "" : WallClock() + " ";
    for (const auto& log : report->logs) {
      auto& rate = rates[LogKey(log)];
      if (log.in_sync) rate.Add(t, *log.in_sync);
      lines.push_back(stamp + logd::ProgressLine(log.uuid, log.in_sync, log.regions, rate.rate(),
                                                 80 - stamp.size()));
    }
    if (lines.empty()) lines.push_back(stamp + "no logs");
    if (tty) {
      if (drawn > 0) std::cout << "\x1b[" << drawn << "A";  // back to the first line
      for (const auto& l : lines) std::cout << "\r\x1b[2K" << l << "\n";
      std::cout << "\x1b[J";  // clear lines left over from a longer previous draw
      drawn = lines.size();
    } else {
      for (const auto& l : lines) std::cout << l << "\n";
    }
    std::cout.flush();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"clogctl: inspect and control cluster mirror logs"};
  app.require_subcommand(1);

  auto* inspect = app.add_subcommand("inspect", "read a log device offline (never writes)");
  std::string device;
  bool inspect_json = false;
  inspect->add_option("device", device, "log device: a path or major:minor")->required();
  inspect->add_flag("--json", inspect_json, "print JSON (fields in logd/README.md)");

  std::string socket = logd::kDefaultControlSocket;
  auto* status = app.add_subcommand("status", "status of every log this node's clogd serves");
  bool status_json = false, watch = false;
  double interval = 1.0;
  uint64_t count = 0;
  status->add_flag("--json", status_json, "print the daemon's JSON (fields in logd/README.md)");
  status->add_option("--socket", socket, "clogd's control socket")->capture_default_str();
  status->add_flag("--watch", watch, "show resync progress per log until interrupted");
  status->add_option("--interval", interval, "seconds between samples with --watch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  status->add_option("--count", count, "with --watch: stop after this many samples (0: never)");

  auto* nodes = app.add_subcommand("nodes", "this node's id and each log's members and server");
  bool nodes_json = false;
  nodes->add_flag("--json", nodes_json, "print the daemon's JSON (fields in logd/README.md)");
  nodes->add_option("--socket", socket, "clogd's control socket")->capture_default_str();

  std::string mirror, new_leg;
  int64_t leg = -1;
  uint64_t offset = 0;
  int timeout_s = 120;
  auto* replace = app.add_subcommand(
      "replace-leg",
      "replace a mirror leg by a new device on every node, then copy every region to it");
  auto* add = app.add_subcommand(
      "add-leg", "add a new device as a mirror leg on every node, then copy every region to it");
  for (CLI::App* sub : {replace, add}) {
    sub->add_option("mirror", mirror, "the mirror: its device-mapper name, or its log's uuid")
        ->required();
    sub->add_option("device", new_leg, "the new leg: a path that names it on every node")
        ->required();
    sub->add_option("--offset", offset, "sectors into the new device where the data starts")
        ->capture_default_str();
    sub->add_option("--socket", socket, "clogd's control socket")->capture_default_str();
    sub->add_option("--timeout", timeout_s, "seconds to wait for every node's answer")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
  }
  replace->add_option("--leg", leg, "the leg's index in the table (default: the failed leg)")
      ->check(CLI::NonNegativeNumber);

  CLI11_PARSE(app, argc, argv);
  if (*inspect) return Inspect(device, inspect_json);
  if (*replace || *add) {
    std::optional<uint32_t> which;
    if (*replace && leg >= 0) which = static_cast<uint32_t>(leg);
    return ChangeLeg(socket, mirror, new_leg, which, offset, bool(*add), timeout_s);
  }
  if (*status)
    return watch ? Watch(socket, interval, count, status_json) : ShowStatus(socket, status_json);
  return ShowNodes(socket, nodes_json);
}
