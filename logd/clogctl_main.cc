// clogctl: the operator's tool.
//   clogctl inspect <device> [--json]   read a log device offline and print what it holds
// (status of running logs over the daemon's control socket comes with the cluster links).
#include <CLI/CLI.hpp>
#include <iostream>

#include "logd/device_path.h"
#include "logd/log_inspect.h"

int main(int argc, char** argv) {
  CLI::App app{"clogctl: inspect and control cluster mirror logs"};
  app.require_subcommand(1);
  auto* inspect = app.add_subcommand("inspect", "read a log device offline (never writes)");
  std::string device;
  bool json = false;
  inspect->add_option("device", device, "log device: a path or major:minor")->required();
  inspect->add_flag("--json", json, "print JSON (fields in logd/README.md)");
  CLI11_PARSE(app, argc, argv);

  auto path = clogd::logd::ResolveDevicePath(device);
  if (!path.ok()) {
    std::cerr << "clogctl: " << path.status().message() << "\n";
    return 1;
  }
  auto dev = clogd::region::OpenDirectDevice(*path);
  if (!dev.ok()) {
    std::cerr << "clogctl: " << dev.status().message() << "\n";
    return 1;
  }
  auto in = clogd::logd::InspectLog(**dev);
  if (!in.ok()) {
    std::cerr << "clogctl: " << in.status().message() << "\n";
    return 1;
  }
  std::cout << (json ? clogd::logd::InspectionJson(*in) + "\n"
                     : clogd::logd::FormatInspection(*in));
  return in->problems.empty() ? 0 : 2;
}
